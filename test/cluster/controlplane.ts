// etcd + kube-apiserver on loopback, with throw-away PKI and an admin bearer token.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeClient } from './kube.ts';
import type { PortAllocator } from './ports.ts';
import { Service, run, tail, waitFor } from './proc.ts';

export interface ControlPlaneOptions {
  dir: string;
  logsDir: string;
  pidsDir: string;
  etcd: string;
  kubeApiserver: string;
  ports: PortAllocator;
}

/** What stop() and the last-resort kill need of a process. */
export type Stoppable = Pick<Service, 'stop' | 'kill'>;

/** kube-apiserver, which tests stop and start again (same port, PKI and etcd) to fault a run. */
export interface RestartableApiserver extends Stoppable {
  /** Starts it again after stop(); resolves once /readyz answers. */
  start(): Promise<void>;
}

export interface ControlPlane {
  kubeconfig: string;
  client: KubeClient;
  services: Stoppable[];
  apiserver: RestartableApiserver;
}

export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const pki = join(opts.dir, 'pki');
  mkdirSync(pki, { recursive: true });
  const [etcdClientPort, etcdPeerPort, apiPort] = await Promise.all([opts.ports.take(), opts.ports.take(), opts.ports.take()]);
  const services: Stoppable[] = [];
  const alive = (s: Service) => (): string | undefined => (s.alive ? undefined : `${s.name} exited; log tail:\n${tail(s.logFile)}`);

  try {
    const etcdUrl = `http://127.0.0.1:${etcdClientPort}`;
    const peerUrl = `http://127.0.0.1:${etcdPeerPort}`;
    const etcd = new Service({
      name: 'etcd',
      cmd: opts.etcd,
      logsDir: opts.logsDir,
      pidsDir: opts.pidsDir,
      args: [
        `--data-dir=${join(opts.dir, 'etcd')}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=default=${peerUrl}`,
        // Test data is disposable; fsync is most of etcd's write latency.
        '--unsafe-no-fsync=true',
        '--log-level=warn',
      ],
    });
    services.push(etcd);
    // The PKI is made while etcd starts.
    const { serverCert, token } = await writePki(pki);
    await waitFor('etcd /health', async () => ((await fetch(`${etcdUrl}/health`)).ok ? true : undefined), { abort: alive(etcd) });

    const server = `https://127.0.0.1:${apiPort}`;
    const apiserverOptions = {
      name: 'kube-apiserver',
      cmd: opts.kubeApiserver,
      logsDir: opts.logsDir,
      pidsDir: opts.pidsDir,
      args: [
        `--etcd-servers=${etcdUrl}`,
        '--bind-address=127.0.0.1',
        `--secure-port=${apiPort}`,
        // Hosts without a default route have no address to advertise, and a loopback one is
        // refused by the endpoint reconciler, so that reconciler is switched off.
        '--advertise-address=127.0.0.1',
        '--endpoint-reconciler-type=none',
        `--tls-cert-file=${join(pki, 'serving.crt')}`,
        `--tls-private-key-file=${join(pki, 'serving.key')}`,
        `--token-auth-file=${join(pki, 'tokens.csv')}`,
        `--service-account-issuer=${server}`,
        `--service-account-key-file=${join(pki, 'sa.pub')}`,
        `--service-account-signing-key-file=${join(pki, 'sa.key')}`,
        '--service-cluster-ip-range=10.0.0.0/24',
        '--authorization-mode=RBAC',
        '--allow-privileged=true',
        // No controller-manager creates default ServiceAccounts.
        '--disable-admission-plugins=ServiceAccount',
        '--profiling=false',
      ],
    };
    let current = new Service(apiserverOptions);
    const client = new KubeClient(server, serverCert, token);
    const ready = () =>
      waitFor('kube-apiserver /readyz', async () => ((await client.request('GET', '/readyz')).status === 200 ? true : undefined), {
        abort: alive(current),
        timeoutMs: 90_000,
      });
    const apiserver: RestartableApiserver = {
      stop: (graceMs?: number) => current.stop(graceMs),
      kill: () => current.kill(),
      start: async () => {
        if (current.alive) return;
        current = new Service(apiserverOptions);
        await ready();
      },
    };
    services.push(apiserver);
    await ready();

    const kubeconfig = join(opts.dir, 'kubeconfig');
    writeFileSync(kubeconfig, kubeconfigYaml(server, serverCert, token), { mode: 0o600 });
    return { kubeconfig, client, services, apiserver };
  } catch (err) {
    for (const s of services.reverse()) await s.stop();
    throw err;
  }
}

async function writePki(dir: string): Promise<{ serverCert: string; token: string }> {
  // One self-signed serving certificate doubles as the CA clients trust; nothing else is signed.
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    join(dir, 'serving.key'),
    '-out',
    join(dir, 'serving.crt'),
    '-days',
    '7',
    '-subj',
    '/CN=fluxstrap-test-apiserver',
    '-addext',
    'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc',
  ]);
  const sa = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  writeFileSync(join(dir, 'sa.key'), sa.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  writeFileSync(join(dir, 'sa.pub'), sa.publicKey.export({ type: 'spki', format: 'pem' }));
  const token = randomBytes(24).toString('hex');
  // system:masters bypasses RBAC: the harness, kubectl and the controllers all act as admin.
  writeFileSync(join(dir, 'tokens.csv'), `${token},admin,admin,"system:masters"\n`, { mode: 0o600 });
  return { serverCert: readFileSync(join(dir, 'serving.crt'), 'utf8'), token };
}

function kubeconfigYaml(server: string, ca: string, token: string): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: fluxstrap-test',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority-data: ${Buffer.from(ca).toString('base64')}`,
    'users:',
    '- name: admin',
    '  user:',
    `    token: ${token}`,
    'contexts:',
    '- name: fluxstrap-test',
    '  context:',
    '    cluster: fluxstrap-test',
    '    user: admin',
    'current-context: fluxstrap-test',
    '',
  ].join('\n');
}
