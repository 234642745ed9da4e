// Flux's source-controller and kustomize-controller as local processes, and the tiny
// "kubelet" that runs them for the flux-system Deployments: there is no kubelet or
// controller-manager, so the harness starts a controller when its Deployment exists and
// mirrors the process's real /readyz into the Deployment's status.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { condition, type KubeClient } from './kube.ts';
import { Service, freePort, sleep } from './proc.ts';

export const FLUX_NAMESPACE = 'flux-system';
export type ControllerName = 'source-controller' | 'kustomize-controller';

const SOURCE_CRDS = ['gitrepositories', 'helmrepositories', 'helmcharts', 'buckets', 'ocirepositories', 'externalartifacts']
  .map((p) => `${p}.source.toolkit.fluxcd.io`);

/** CRDs a controller watches; its manager exits at start if one is missing. */
const REQUIRED_CRDS: Record<ControllerName, readonly string[]> = {
  'source-controller': SOURCE_CRDS,
  'kustomize-controller': ['kustomizations.kustomize.toolkit.fluxcd.io', ...SOURCE_CRDS],
};

export interface ControllerOptions {
  name: ControllerName;
  binary: string;
  kubeconfig: string;
  dir: string;
  logsDir: string;
  pidsDir: string;
}

export class FluxController {
  readonly name: ControllerName;
  readonly #opts: ControllerOptions;
  #ports: { health: number; metrics: number; storage: number } | undefined;
  #service: Service | undefined;

  constructor(opts: ControllerOptions) {
    this.name = opts.name;
    this.#opts = opts;
  }

  get running(): boolean {
    return this.#service?.alive ?? false;
  }

  get logFile(): string {
    return join(this.#opts.logsDir, `${this.name}.log`);
  }

  async start(): Promise<void> {
    if (this.running) return;
    // Ports stay fixed across restarts so artifact URLs already in the cluster keep working.
    this.#ports ??= { health: await freePort(), metrics: await freePort(), storage: await freePort() };
    const { health, metrics, storage } = this.#ports;
    const args = [
      `--health-addr=127.0.0.1:${health}`,
      `--metrics-addr=127.0.0.1:${metrics}`,
      '--enable-leader-election=false',
      '--watch-all-namespaces=true',
      '--log-encoding=console',
      '--log-level=info',
    ];
    if (this.name === 'source-controller') {
      const storagePath = join(this.#opts.dir, 'source-controller-storage');
      mkdirSync(storagePath, { recursive: true });
      args.push(`--storage-path=${storagePath}`, `--storage-addr=127.0.0.1:${storage}`, `--storage-adv-addr=127.0.0.1:${storage}`);
    } else {
      // Hermetic builds, and a broken artifact URL fails fast instead of after 9 retries.
      args.push('--no-remote-bases=true', '--http-retry=2');
    }
    this.#service = new Service({
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
  }

  async stop(): Promise<void> {
    await this.#service?.stop();
  }

  /** The controller's own readiness endpoint, which turns 200 once its manager has started. */
  async healthy(): Promise<boolean> {
    if (!this.running || this.#ports === undefined) return false;
    try {
      const res = await fetch(`http://127.0.0.1:${this.#ports.health}/readyz`, { signal: AbortSignal.timeout(1000) });
      return res.ok;
    } catch {
      return false;
    }
  }

  kill(): void {
    this.#service?.kill();
  }
}

export async function crdsEstablished(client: KubeClient, name: ControllerName): Promise<boolean> {
  for (const crd of REQUIRED_CRDS[name]) {
    const obj = await client.get<{ status?: { conditions?: { type: string; status: string }[] } }>(
      `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd}`);
    if (condition(obj, 'Established')?.status !== 'True') return false;
  }
  return true;
}

interface Deployment {
  metadata: { name: string; generation?: number };
  spec?: { replicas?: number };
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
      const deployment = await this.#client.get<Deployment>(
        `/apis/apps/v1/namespaces/${FLUX_NAMESPACE}/deployments/${controller.name}`);
      const replicas = deployment?.spec?.replicas ?? 1;
      const wanted = deployment !== undefined && replicas > 0 && !this.#held.has(controller.name);
      if (!wanted) {
        await controller.stop();
      } else if (!controller.running && await crdsEstablished(this.#client, controller.name)) {
        await controller.start();
      }
      if (deployment !== undefined) await this.#writeStatus(deployment, replicas, await controller.healthy());
    }
  }

  async #writeStatus(deployment: Deployment, replicas: number, healthy: boolean): Promise<void> {
    const generation = deployment.metadata.generation ?? 1;
    const ready = healthy ? replicas : 0;
    const current = deployment.status;
    if (current?.observedGeneration === generation && (current.availableReplicas ?? 0) === ready
      && condition(deployment, 'Available')?.status === (healthy ? 'True' : 'False')) return;
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
        { type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable', message: `ReplicaSet "${deployment.metadata.name}" has successfully progressed.` },
      ].map((c) => ({ ...c, lastUpdateTime: now, lastTransitionTime: now })),
    };
    await this.#client.mergePatch(`/apis/apps/v1/namespaces/${FLUX_NAMESPACE}/deployments/${deployment.metadata.name}/status`, { status });
  }
}
