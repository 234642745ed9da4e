// Flux's controllers as local processes, and the tiny "kubelet" that runs them for the
// flux-system Deployments: there is no kubelet or controller-manager, so the harness starts a
// controller when its Deployment exists and mirrors the process's real /readyz into the
// Deployment's status.
import { closeSync, mkdirSync, openSync, readSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ControllerName } from './components.ts';
import { condition, type KubeClient } from './kube.ts';
import type { PortAllocator } from './ports.ts';
import { Service, sleep } from './proc.ts';

export const FLUX_NAMESPACE = 'flux-system';
export type { ControllerName } from './components.ts';

const SOURCE_CRDS = ['gitrepositories', 'helmrepositories', 'helmcharts', 'buckets', 'ocirepositories', 'externalartifacts'].map(
  (p) => `${p}.source.toolkit.fluxcd.io`,
);

/** CRDs a controller watches; its manager exits at start if one is missing. */
const REQUIRED_CRDS: Record<ControllerName, readonly string[]> = {
  'source-controller': SOURCE_CRDS,
  'kustomize-controller': ['kustomizations.kustomize.toolkit.fluxcd.io', ...SOURCE_CRDS],
  'helm-controller': ['helmreleases.helm.toolkit.fluxcd.io', ...SOURCE_CRDS],
  'notification-controller': ['alerts', 'providers', 'receivers'].map((p) => `${p}.notification.toolkit.fluxcd.io`),
};

/** The addresses each controller listens on; notification-controller's `events` takes the others' events. */
const LISTENERS: Record<ControllerName, readonly string[]> = {
  'source-controller': ['health', 'metrics', 'storage'],
  'kustomize-controller': ['health', 'metrics'],
  'helm-controller': ['health', 'metrics'],
  'notification-controller': ['health', 'metrics', 'events', 'receiver'],
};

/**
 * Flags of a Deployment's container that the harness passes on to the process (its own command
 * line replaces the rest): kustomize-controller's controller-level SOPS settings, which fluxstrap
 * sets through a patch of the Deployment.
 */
const DEPLOYMENT_FLAGS: Record<ControllerName, readonly string[]> = {
  'source-controller': [],
  'kustomize-controller': ['--sops-age-secret=', '--sops-vault-configmap='],
  'helm-controller': [],
  'notification-controller': [],
};

const ADDRESS_IN_USE = /bind: address already in use/;
const CONFLICT_CHECK_MS = 500;

export interface ControllerOptions {
  name: ControllerName;
  binary: string;
  kubeconfig: string;
  dir: string;
  logsDir: string;
  pidsDir: string;
  ports: PortAllocator;
  /** Where to send events (notification-controller's event receiver), if it is part of the cluster. */
  eventsUrl: () => string | undefined;
}

export class FluxController {
  readonly name: ControllerName;
  readonly #opts: ControllerOptions;
  #ports: Record<string, number>;
  #service: Service | undefined;
  #conflictTimer: NodeJS.Timeout | undefined;
  /** The process whose log is watched for port conflicts; unset by an intended stop. */
  #watched: Service | undefined;
  #restartPending = false;
  // start, stop and a restart on new ports never interleave.
  #queue: Promise<void> = Promise.resolve();
  #restarts = 0;
  #deploymentArgs: readonly string[] = [];

  private constructor(opts: ControllerOptions, ports: Record<string, number>) {
    this.name = opts.name;
    this.#opts = opts;
    this.#ports = ports;
  }

  /** Ports are taken up front: the others need notification-controller's events address before it runs. */
  static async create(opts: ControllerOptions): Promise<FluxController> {
    return new FluxController(opts, await takePorts(opts.ports, opts.name));
  }

  /** The process runs, or is about to run again on new ports. */
  get running(): boolean {
    return this.#restartPending || (this.#service?.alive ?? false);
  }

  get logFile(): string {
    return join(this.#opts.logsDir, `${this.name}.log`);
  }

  /** Current listener ports by role (health, metrics, storage, events, receiver). */
  get ports(): Readonly<Record<string, number>> {
    return { ...this.#ports };
  }

  /** How often a listener was in use and the controller was restarted on new ports. */
  get portRestarts(): number {
    return this.#restarts;
  }

  /** The flags taken from the Deployment that the running process was started with. */
  get deploymentArgs(): readonly string[] {
    return this.#deploymentArgs;
  }

  /** The passed-on flags of a Deployment's containers, in their order. */
  passedOn(args: readonly unknown[]): string[] {
    const prefixes = DEPLOYMENT_FLAGS[this.name];
    return args.filter((a): a is string => typeof a === 'string' && prefixes.some((p) => a.startsWith(p)));
  }

  /** Start with these Deployment flags; a running process with other ones is restarted, as a rollout would. */
  startWith(args: readonly string[]): Promise<void> {
    return this.#serial(async () => {
      if (this.running && args.join('\0') === this.#deploymentArgs.join('\0')) return;
      if (this.running) await this.#stopNow();
      this.#deploymentArgs = [...args];
      this.#spawn();
    });
  }

  start(): Promise<void> {
    return this.#serial(() => {
      if (!this.running) this.#spawn();
      return Promise.resolve();
    });
  }

  stop(): Promise<void> {
    return this.#serial(() => this.#stopNow());
  }

  /** The controller's own readiness endpoint, which turns 200 once its manager has started. */
  async healthy(): Promise<boolean> {
    if (!(this.#service?.alive ?? false)) return false;
    try {
      const res = await fetch(`http://127.0.0.1:${this.#ports.health}/readyz`, { signal: AbortSignal.timeout(1000) });
      return res.ok;
    } catch {
      return false;
    }
  }

  kill(): void {
    clearInterval(this.#conflictTimer);
    this.#service?.kill();
  }

  #serial(step: () => Promise<void>): Promise<void> {
    const next = this.#queue.then(step);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async #stopNow(): Promise<void> {
    this.#watched = undefined;
    clearInterval(this.#conflictTimer);
    await this.#service?.stop();
  }

  #spawn(): void {
    const p = this.#ports;
    const events = this.#opts.eventsUrl();
    const args = [
      `--health-addr=127.0.0.1:${p.health}`,
      `--metrics-addr=127.0.0.1:${p.metrics}`,
      '--enable-leader-election=false',
      '--watch-all-namespaces=true',
      '--log-encoding=console',
      '--log-level=info',
    ];
    if (this.name === 'notification-controller') {
      args.push(`--events-addr=127.0.0.1:${p.events}`, `--receiverAddr=127.0.0.1:${p.receiver}`);
    } else if (events !== undefined) {
      args.push(`--events-addr=${events}`);
    }
    if (this.name === 'source-controller') {
      const storagePath = join(this.#opts.dir, 'source-controller-storage');
      mkdirSync(storagePath, { recursive: true });
      args.push(`--storage-path=${storagePath}`, `--storage-addr=127.0.0.1:${p.storage}`, `--storage-adv-addr=127.0.0.1:${p.storage}`);
    } else if (this.name === 'kustomize-controller') {
      // Hermetic builds, and a broken artifact URL fails fast instead of after 9 retries.
      args.push('--no-remote-bases=true', '--http-retry=2');
    } else if (this.name === 'helm-controller') {
      args.push('--http-retry=2');
    }
    args.push(...this.#deploymentArgs);
    let logOffset = 0;
    try {
      logOffset = statSync(this.logFile).size;
    } catch {
      // First start: no log yet.
    }
    const service = new Service({
      name: this.name,
      cmd: this.#opts.binary,
      args,
      logsDir: this.#opts.logsDir,
      pidsDir: this.#opts.pidsDir,
      env: {
        ...process.env,
        KUBECONFIG: this.#opts.kubeconfig,
        RUNTIME_NAMESPACE: FLUX_NAMESPACE,
        NO_PROXY: '127.0.0.1,localhost',
        no_proxy: '127.0.0.1,localhost',
      },
    });
    this.#service = service;
    this.#watchForConflicts(service, logOffset);
  }

  /**
   * The ports are reserved for this cluster, so only a foreign program can hold one; if it does,
   * the controller says so in its log (most exit, source-controller's artifact server retries
   * forever) and is restarted on new ports. Otherwise ports stay fixed across restarts, so
   * artifact URLs already in the cluster keep working. The log is read again the moment the
   * process exits, so a caller never sees an exit that is about to be a restart.
   */
  #watchForConflicts(service: Service, from: number): void {
    this.#watched = service;
    let offset = from;
    let carry = '';
    const check = (): void => {
      if (this.#watched !== service) return;
      const chunk = readFrom(this.logFile, offset);
      offset += chunk.length;
      const text = carry + chunk.toString('utf8');
      carry = text.slice(-200);
      const conflict = text.split('\n').find((l) => ADDRESS_IN_USE.test(l));
      if (conflict === undefined) {
        if (!service.alive) clearInterval(this.#conflictTimer);
        return;
      }
      clearInterval(this.#conflictTimer);
      this.#restartPending = true;
      void this.#serial(async () => {
        try {
          if (this.#watched !== service) return;
          await this.#stopNow();
          this.#ports = await takePorts(this.#opts.ports, this.name);
          this.#restarts++;
          writeFileSync(this.logFile, `fluxstrap harness: "${conflict.trim().slice(0, 300)}": restarting on new ports ${JSON.stringify(this.#ports)}\n`, {
            flag: 'a',
          });
          this.#spawn();
        } finally {
          this.#restartPending = false;
        }
      });
    };
    this.#conflictTimer = setInterval(check, CONFLICT_CHECK_MS);
    this.#conflictTimer.unref();
    void service.exited.then(check);
  }
}

async function takePorts(allocator: PortAllocator, name: ControllerName): Promise<Record<string, number>> {
  const ports: Record<string, number> = {};
  for (const role of LISTENERS[name]) ports[role] = await allocator.take();
  return ports;
}

function readFrom(file: string, offset: number): Buffer {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return Buffer.alloc(0);
  }
  try {
    const buf = Buffer.alloc(64 * 1024);
    const n = readSync(fd, buf, 0, buf.length, offset);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

export async function crdsEstablished(client: KubeClient, name: ControllerName): Promise<boolean> {
  for (const crd of REQUIRED_CRDS[name]) {
    const obj = await client.get<{ status?: { conditions?: { type: string; status: string }[] } }>(
      `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd}`,
    );
    if (condition(obj, 'Established')?.status !== 'True') return false;
  }
  return true;
}

interface Deployment {
  metadata: { name: string; generation?: number };
  spec?: { replicas?: number; template?: { spec?: { containers?: { args?: unknown[] }[] } } };
  status?: {
    observedGeneration?: number;
    availableReplicas?: number;
    conditions?: { type: string; status: string; reason?: string }[];
  };
}

/**
 * Reconciles once a second, like a kubelet plus the Deployment controller reduced to what
 * kstatus and `kubectl rollout status` read. A controller held by hold() is not restarted, so
 * tests can prove that an unhealthy process makes its Deployment unavailable.
 */
export class DeploymentMirror {
  readonly #client: KubeClient;
  readonly #controllers: readonly FluxController[];
  readonly #held = new Set<ControllerName>();
  #stopped = false;
  #loop: Promise<void> | undefined;
  lastError: string | undefined;

  constructor(client: KubeClient, controllers: readonly FluxController[]) {
    this.#client = client;
    this.#controllers = controllers;
  }

  start(): void {
    this.#loop = (async () => {
      while (!this.#stopped) {
        try {
          await this.reconcile();
          this.lastError = undefined;
        } catch (err) {
          // The apiserver may be briefly unavailable; the next pass retries.
          this.lastError = (err as Error).message;
        }
        await sleep(1000);
      }
    })();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#loop;
  }

  hold(name: ControllerName): void {
    this.#held.add(name);
  }

  release(name: ControllerName): void {
    this.#held.delete(name);
  }

  async reconcile(): Promise<void> {
    for (const controller of this.#controllers) {
      const deployment = await this.#client.get<Deployment>(`/apis/apps/v1/namespaces/${FLUX_NAMESPACE}/deployments/${controller.name}`);
      const replicas = deployment?.spec?.replicas ?? 1;
      const wanted = deployment !== undefined && replicas > 0 && !this.#held.has(controller.name);
      if (!wanted) {
        await controller.stop();
      } else {
        const args = controller.passedOn((deployment.spec?.template?.spec?.containers ?? []).flatMap((c) => c.args ?? []));
        const changed = args.join('\0') !== controller.deploymentArgs.join('\0');
        if ((!controller.running || changed) && (await crdsEstablished(this.#client, controller.name))) await controller.startWith(args);
      }
      if (deployment !== undefined) await this.#writeStatus(deployment, replicas, await controller.healthy());
    }
  }

  async #writeStatus(deployment: Deployment, replicas: number, healthy: boolean): Promise<void> {
    const generation = deployment.metadata.generation ?? 1;
    const ready = healthy ? replicas : 0;
    const current = deployment.status;
    if (
      current?.observedGeneration === generation &&
      (current.availableReplicas ?? 0) === ready &&
      condition(deployment, 'Available')?.status === (healthy ? 'True' : 'False')
    )
      return;
    const now = new Date().toISOString();
    const status = {
      observedGeneration: generation,
      replicas,
      updatedReplicas: replicas,
      readyReplicas: ready,
      availableReplicas: ready,
      unavailableReplicas: replicas - ready,
      conditions: [
        healthy
          ? { type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable', message: 'Deployment has minimum availability.' }
          : { type: 'Available', status: 'False', reason: 'MinimumReplicasUnavailable', message: 'Deployment does not have minimum availability.' },
        {
          type: 'Progressing',
          status: 'True',
          reason: 'NewReplicaSetAvailable',
          message: `ReplicaSet "${deployment.metadata.name}" has successfully progressed.`,
        },
      ].map((c) => ({ ...c, lastUpdateTime: now, lastTransitionTime: now })),
    };
    await this.#client.mergePatch(`/apis/apps/v1/namespaces/${FLUX_NAMESPACE}/deployments/${deployment.metadata.name}/status`, { status });
  }
}
