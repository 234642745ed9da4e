// Issue 17: the test cluster runs Flux's default controllers, so the helm-controller and
// notification-controller paths are real: a HelmRelease of a chart from a static HTTP Helm
// repository served by the test (index.yaml + a .tgz packaged here) is installed, and its
// events reach a local webhook through a generic Provider and an Alert.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { tempDir } from '../helpers/tmp.ts';
import { condition } from '../cluster/kube.ts';
import { run, waitFor } from '../cluster/proc.ts';
import { clusterForFile } from '../cluster/testing.ts';

const NAMESPACE = 'helm-test';
const CHART = { name: 'hello', version: '0.1.0' };

const suite = clusterForFile({ flux: 'now' }, async (c) => {
  await c.kubectl(['create', 'namespace', NAMESPACE]);
});

/** A chart directory packaged the way `helm package` lays it out: `<name>/Chart.yaml` at the top. */
async function packageChart(work: string): Promise<Buffer> {
  const dir = join(work, 'chart', CHART.name);
  mkdirSync(join(dir, 'templates'), { recursive: true });
  writeFileSync(join(dir, 'Chart.yaml'), stringify({ apiVersion: 'v2', name: CHART.name, version: CHART.version, description: 'fluxstrap test chart' }));
  writeFileSync(join(dir, 'values.yaml'), stringify({ greeting: 'hello' }));
  writeFileSync(
    join(dir, 'templates', 'configmap.yaml'),
    [
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata:',
      '  name: {{ .Release.Name }}-greeting',
      '  namespace: {{ .Release.Namespace }}',
      'data:',
      '  greeting: {{ .Values.greeting | quote }}',
      '',
    ].join('\n'),
  );
  const tgz = join(work, `${CHART.name}-${CHART.version}.tgz`);
  await run('tar', ['-czf', tgz, '-C', join(work, 'chart'), CHART.name]);
  return readFileSync(tgz);
}

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}

function body(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    req
      .setEncoding('utf8')
      .on('data', (d: string) => {
        text += d;
      })
      .on('end', () => resolve(text));
  });
}

interface FluxEvent {
  involvedObject?: { kind?: string; name?: string };
  reason?: string;
  message?: string;
  severity?: string;
}

let chartRepo: Server;
let webhook: Server;
let repoUrl = '';
let hookUrl = '';
const events: FluxEvent[] = [];

before(async () => {
  const tgz = await packageChart(await tempDir('helm-chart'));
  let index = '';
  chartRepo = createServer((req, res) => {
    if (req.url === '/index.yaml') res.writeHead(200, { 'content-type': 'application/x-yaml' }).end(index);
    else if (req.url === `/${CHART.name}-${CHART.version}.tgz`) res.writeHead(200, { 'content-type': 'application/gzip' }).end(tgz);
    else res.writeHead(404).end();
  });
  repoUrl = await listen(chartRepo);
  const now = new Date().toISOString();
  index = stringify({
    apiVersion: 'v1',
    entries: {
      [CHART.name]: [
        {
          apiVersion: 'v2',
          name: CHART.name,
          version: CHART.version,
          created: now,
          digest: createHash('sha256').update(tgz).digest('hex'),
          urls: [`${repoUrl}/${CHART.name}-${CHART.version}.tgz`],
        },
      ],
    },
    generated: now,
  });
  webhook = createServer((req, res) => {
    void body(req).then((text) => {
      events.push(JSON.parse(text) as FluxEvent);
      res.writeHead(200).end();
    });
  });
  hookUrl = `${await listen(webhook)}/hook`;
});
after(() => {
  chartRepo.closeAllConnections();
  chartRepo.close();
  webhook.closeAllConnections();
  webhook.close();
});

const apply = (objects: object[]): Promise<string> =>
  suite.cluster.kubectl(['apply', '--server-side', '-f', '-'], objects.map((o) => `---\n${stringify(o)}`).join(''));

interface Conditioned {
  status?: { conditions?: { type: string; status: string; reason?: string; message?: string }[] };
}

async function waitReady(kind: string, name: string): Promise<void> {
  let last = '';
  await waitFor(
    `${kind}/${name} Ready`,
    async () => {
      const obj = JSON.parse(await suite.cluster.kubectl(['get', kind, name, '-n', NAMESPACE, '-o', 'json'])) as Conditioned;
      const ready = condition(obj, 'Ready');
      last = JSON.stringify(ready);
      return ready?.status === 'True' ? true : undefined;
    },
    { timeoutMs: 120_000, intervalMs: 500 },
  ).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}; last Ready condition: ${last}`);
  });
}

void describe('helm-controller and notification-controller', () => {
  void test('a HelmRelease from the HTTP Helm repository is installed; its events reach the webhook through Provider + Alert', () =>
    suite.run(async () => {
      await apply([
        {
          apiVersion: 'notification.toolkit.fluxcd.io/v1beta3',
          kind: 'Provider',
          metadata: { name: 'webhook', namespace: NAMESPACE },
          spec: { type: 'generic', address: hookUrl },
        },
        {
          apiVersion: 'notification.toolkit.fluxcd.io/v1beta3',
          kind: 'Alert',
          metadata: { name: 'helm', namespace: NAMESPACE },
          spec: { providerRef: { name: 'webhook' }, eventSeverity: 'info', eventSources: [{ kind: 'HelmRelease', name: '*' }] },
        },
      ]);
      await apply([
        {
          apiVersion: 'source.toolkit.fluxcd.io/v1',
          kind: 'HelmRepository',
          metadata: { name: 'local', namespace: NAMESPACE },
          spec: { url: repoUrl, interval: '10m' },
        },
        {
          apiVersion: 'helm.toolkit.fluxcd.io/v2',
          kind: 'HelmRelease',
          metadata: { name: 'hello', namespace: NAMESPACE },
          spec: {
            interval: '10m',
            chart: { spec: { chart: CHART.name, version: CHART.version, sourceRef: { kind: 'HelmRepository', name: 'local' } } },
            values: { greeting: 'from fluxstrap' },
          },
        },
      ]);
      await waitReady('helmrepository', 'local');
      await waitReady('helmrelease', 'hello');
      const cm = JSON.parse(await suite.cluster.kubectl(['get', 'configmap', 'hello-greeting', '-n', NAMESPACE, '-o', 'json'])) as {
        data?: Record<string, string>;
      };
      assert.equal(cm.data?.greeting, 'from fluxstrap');

      const installed = await waitFor(
        'the HelmRelease install event at the webhook',
        () =>
          Promise.resolve(events.find((e) => e.involvedObject?.kind === 'HelmRelease' && e.involvedObject.name === 'hello' && e.reason === 'InstallSucceeded')),
        { timeoutMs: 60_000 },
      ).catch((err: unknown) => {
        throw new Error(`${(err as Error).message}; received: ${JSON.stringify(events)}`);
      });
      assert.equal(installed.severity, 'info');
      assert.match(installed.message ?? '', /hello/);
    }));
});
