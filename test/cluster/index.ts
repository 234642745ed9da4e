// A real local cluster for tests: etcd + kube-apiserver, Flux's default controllers (source-,
// kustomize-, helm- and notification-controller) as local processes, and a Git server over
// HTTP and SSH.
//
//   const cluster = await startCluster({ flux: 'now' });
//   try { … cluster.kubectl(['get', 'ns']) … } finally { await cluster.stop(); }
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ownedTempDir } from '../helpers/tmp.ts';
import { DEFAULT_CONTROLLERS, FLUX_VERSION, KUBERNETES_VERSION, binaryPath, component, type ComponentName } from './components.ts';
import { startControlPlane, type RestartableApiserver, type Stoppable } from './controlplane.ts';
import { DeploymentMirror, FluxController, crdsEstablished, type ControllerName } from './flux.ts';
import { startGitServer, type GitServer } from './git-server.ts';
import { gotkComponentsPath } from './gotk.ts';
import { type KubeClient } from './kube.ts';
import { PortAllocator } from './ports.ts';
import { run, tail, waitFor } from './proc.ts';
import { clearClusterDir, markKept } from './watchdog.ts';

export { FLUX_NAMESPACE, type ControllerName } from './flux.ts';
export { DEFAULT_CONTROLLERS } from './components.ts';
export type { GitServer } from './git-server.ts';

/** Set to 1 to keep every cluster directory whole after stop(), e.g. to inspect etcd or the repos. */
export const KEEP_ENV = 'FLUXSTRAP_KEEP_CLUSTER_DIRS';

/**
 * - `on-deployment`: the harness is the kubelet. A controller runs while its Deployment in
 *   flux-system exists (and its CRDs are Established); the Deployment's status mirrors the
 *   process's /readyz. This is what `fluxstrap bootstrap` and `flux install` expect.
 * - `now`: the harness applies the Flux CRDs and starts the controllers before returning;
 *   no Deployments are involved.
 * - `off`: no controllers.
 */
export type FluxMode = 'on-deployment' | 'now' | 'off';

export interface StartOptions {
  flux?: FluxMode;
  /**
   * The controllers the harness runs (default: Flux's four default ones, which
   * gotk-components.yaml installs). A test that needs fewer saves memory and start time; a
   * Deployment of a controller not listed stays unavailable.
   */
  controllers?: readonly ControllerName[];
}

export interface Binaries {
  kubeApiserver: string;
  kubectl: string;
  etcd: string;
  sourceController: string;
  kustomizeController: string;
  helmController: string;
  notificationController: string;
  sops: string;
  /** Present only after `npm run cluster:build -- --with-flux-cli`. */
  flux?: string;
}

export interface Controllers {
  /** Stops a controller and keeps it stopped (its Deployment turns unavailable) until start(). */
  stop(name: ControllerName): Promise<void>;
  start(name: ControllerName): Promise<void>;
  healthy(name: ControllerName): Promise<boolean>;
  /** The controller's listener ports by role (health, metrics, storage, events, receiver). */
  ports(name: ControllerName): Readonly<Record<string, number>>;
  /** How often a listener port was in use and the controller was restarted on new ports. */
  portRestarts(name: ControllerName): number;
  /** The flags of its Deployment the running process got (kustomize-controller's `--sops-*`). */
  deploymentArgs(name: ControllerName): readonly string[];
  /**
   * SIGKILLs the controller as a crash would, without holding it: in `on-deployment` mode the
   * mirror starts it again, as a kubelet restarts a crashed container.
   */
  crash(name: ControllerName): void;
}

export interface Cluster {
  /** Temporary directory of this cluster; logs are in `logsDir`. */
  dir: string;
  logsDir: string;
  kubeconfig: string;
  server: string;
  kubernetesVersion: string;
  /** The Flux release whose controllers and gotk-components.yaml are used. */
  fluxVersion: string;
  controllerVersions: Record<ControllerName, string>;
  gotkComponentsPath: string;
  binaries: Binaries;
  git: GitServer;
  controllers: Controllers;
  /** kube-apiserver: stop() it and start() it again (same port, certificate and etcd data). */
  apiserver: Pick<RestartableApiserver, 'stop' | 'start'>;
  /** Runs the built kubectl against this cluster; rejects with kubectl's error line. */
  kubectl(args: readonly string[], input?: string): Promise<string>;
  /** The last lines of every log, for a failing test to print. */
  logTails(lines?: number): string;
  /**
   * Keeps the logs after stop() or a crash, because `why` (a test failed). A later run prunes
   * them after 24 h. clusterForFile() calls it for every failing test.
   */
  keep(why: string): void;
  /** Stops every process and removes `dir`, unless it is kept. */
  stop(): Promise<void>;
}

function bin(name: ComponentName, binary: string = name): string {
  return binaryPath(component(name), binary);
}

export function binaries(): Binaries {
  const flux = bin('flux');
  return {
    kubeApiserver: bin('kubernetes', 'kube-apiserver'),
    kubectl: bin('kubernetes', 'kubectl'),
    etcd: bin('etcd'),
    sourceController: bin('source-controller'),
    kustomizeController: bin('kustomize-controller'),
    helmController: bin('helm-controller'),
    notificationController: bin('notification-controller'),
    sops: bin('sops'),
    ...(existsSync(flux) ? { flux } : {}),
  };
}

/** Fails with the command to run when the cache has not been built (for these controllers). */
export function assertBuilt(controllers: readonly ControllerName[] = DEFAULT_CONTROLLERS): Binaries {
  const b = binaries();
  const required: string[] = [b.kubeApiserver, b.kubectl, b.etcd, b.sops, gotkComponentsPath(), ...controllers.map((c) => bin(c))];
  const missing = required.filter((p) => !existsSync(p));
  if (missing.length > 0) {
    throw new Error(`test cluster is not built (missing ${missing.join(', ')}): run \`npm run cluster:build\``);
  }
  return b;
}

export async function startCluster(opts: StartOptions = {}): Promise<Cluster> {
  const mode = opts.flux ?? 'on-deployment';
  const wanted = opts.controllers ?? DEFAULT_CONTROLLERS;
  const b = assertBuilt(wanted);
  const dir = ownedTempDir('cluster');
  if (process.env[KEEP_ENV] === '1') markKept(dir, { why: `${KEEP_ENV}=1`, everything: true });
  const logsDir = join(dir, 'logs');
  const pidsDir = join(dir, 'pids');
  mkdirSync(logsDir);
  mkdirSync(pidsDir);
  const watchdog = spawn(process.execPath, [join(import.meta.dirname, 'watchdog.ts'), String(process.pid), pidsDir, dir], {
    detached: true,
    stdio: 'ignore',
  });
  watchdog.unref();

  const ports = new PortAllocator(dir);
  const services: Stoppable[] = [];
  const controllers: FluxController[] = [];
  let mirror: DeploymentMirror | undefined;
  let git: GitServer | undefined;
  // Last resort for a plain process.exit(); signals and crashes are the watchdog's job. The
  // watchdog is left running: it clears the directory once this process is gone.
  const killSync = (): void => {
    for (const s of services) s.kill();
    for (const c of controllers) c.kill();
  };
  process.once('exit', killSync);

  const stop = async (): Promise<void> => {
    process.removeListener('exit', killSync);
    await mirror?.stop();
    await Promise.all(controllers.map((c) => c.stop()));
    // kube-apiserver stops in about a second while etcd is up, but waits out its grace
    // period once etcd is gone.
    for (const s of [...services].reverse()) await s.stop();
    await git?.stop();
    ports.release();
    watchdog.kill('SIGKILL');
    clearClusterDir(dir);
  };
  const keep = (why: string): void => markKept(dir, { why, everything: false });

  const logTails = (lines = 40): string => {
    const files = existsSync(logsDir) ? readdirSync(logsDir) : [];
    return files.map((f) => `----- ${join(logsDir, f)} (last ${lines} lines)\n${tail(join(logsDir, f), lines)}`).join('\n');
  };

  try {
    const [planeResult, gitResult] = await Promise.allSettled([
      startControlPlane({ dir, logsDir, pidsDir, etcd: b.etcd, kubeApiserver: b.kubeApiserver, ports }),
      startGitServer(dir),
    ]);
    // Whatever did start must be stopped below if the other half failed.
    if (planeResult.status === 'fulfilled') services.push(...planeResult.value.services);
    if (gitResult.status === 'fulfilled') git = gitResult.value;
    if (planeResult.status === 'rejected') throw planeResult.reason;
    if (gitResult.status === 'rejected') throw gitResult.reason;
    const plane = planeResult.value;
    const gitServer = gitResult.value;
    const kubectl = (args: readonly string[], input?: string): Promise<string> =>
      run(b.kubectl, ['--kubeconfig', plane.kubeconfig, ...args], input === undefined ? {} : { input });

    const eventsUrl = (): string | undefined => {
      const port = controllers.find((c) => c.name === 'notification-controller')?.ports.events;
      return port === undefined ? undefined : `http://127.0.0.1:${port}/`;
    };
    for (const name of wanted) {
      controllers.push(await FluxController.create({ name, binary: bin(name), kubeconfig: plane.kubeconfig, dir, logsDir, pidsDir, ports, eventsUrl }));
    }
    const controller = (name: ControllerName): FluxController => {
      const found = controllers.find((c) => c.name === name);
      if (!found) throw new Error(`no controller ${name}`);
      return found;
    };
    if (mode === 'now') {
      await kubectl(['apply', '--server-side', '-f', '-'], fluxCrds());
      await Promise.all(controllers.map((c) => startDirectly(c, plane.client)));
    } else if (mode === 'on-deployment') {
      mirror = new DeploymentMirror(plane.client, controllers);
      mirror.start();
    }

    return {
      dir,
      logsDir,
      kubeconfig: plane.kubeconfig,
      server: plane.client.server,
      kubernetesVersion: KUBERNETES_VERSION,
      fluxVersion: FLUX_VERSION,
      controllerVersions: Object.fromEntries(DEFAULT_CONTROLLERS.map((c) => [c, component(c).version])) as Record<ControllerName, string>,
      gotkComponentsPath: gotkComponentsPath(),
      binaries: b,
      git: gitServer,
      controllers: controlsFor(controller, () => mirror, plane.client),
      apiserver: { stop: () => plane.apiserver.stop(), start: () => plane.apiserver.start() },
      kubectl,
      logTails,
      keep,
      stop,
    };
  } catch (err) {
    const tails = logTails(20);
    keep('the cluster failed to start');
    await stop();
    throw new Error(`${(err as Error).message}\nlogs kept in ${logsDir}\n${tails}`, { cause: err });
  }
}

function controlsFor(controller: (name: ControllerName) => FluxController, mirror: () => DeploymentMirror | undefined, client: KubeClient): Controllers {
  return {
    stop: async (name) => {
      mirror()?.hold(name);
      await controller(name).stop();
    },
    start: async (name) => {
      const m = mirror();
      if (m === undefined) {
        await startDirectly(controller(name), client);
      } else {
        m.release(name);
        await waitUntilHealthy(controller(name), false);
      }
    },
    healthy: (name) => controller(name).healthy(),
    ports: (name) => controller(name).ports,
    portRestarts: (name) => controller(name).portRestarts,
    deploymentArgs: (name) => controller(name).deploymentArgs,
    crash: (name) => controller(name).kill(),
  };
}

async function startDirectly(c: FluxController, client: KubeClient): Promise<void> {
  await waitFor(`CRDs of ${c.name} Established`, async () => ((await crdsEstablished(client, c.name)) ? true : undefined));
  await c.start();
  await waitUntilHealthy(c, true);
}

/** With the mirror in charge a stopped process is restarted, so only direct starts fail fast. */
async function waitUntilHealthy(c: FluxController, startedDirectly: boolean): Promise<void> {
  await waitFor(`${c.name} /readyz`, async () => ((await c.healthy()) ? true : undefined), {
    timeoutMs: 60_000,
    abort: () => (!startedDirectly || c.running ? undefined : `${c.name} exited; log tail:\n${tail(c.logFile)}`),
  });
}

/** The CustomResourceDefinitions of the generated gotk-components.yaml, as one YAML stream. */
function fluxCrds(): string {
  return parseAllDocuments(readFileSync(gotkComponentsPath(), 'utf8'))
    .filter((doc) => (doc.toJS() as { kind?: string } | null)?.kind === 'CustomResourceDefinition')
    .map((doc) => doc.toString())
    .join('---\n');
}
