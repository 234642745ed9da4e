import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { connectKube } from '../../../src/adapters/kube.ts';
import { headerKeyEscape, loadKubeContext } from '../../../src/adapters/kubeconfig.ts';
import type { KubeContext } from '../../../src/adapters/kubeconfig.ts';
import { FluxstrapError } from '../../../src/core/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'fluxstrap-kubeconfig-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const b64 = (s: string) => Buffer.from(s).toString('base64');

let n = 0;
/** A kubeconfig with one context `c` of cluster `k` and user `u`, with these fields merged in. */
function kubeconfig(
  opts: { cluster?: Record<string, unknown>; user?: Record<string, unknown>; context?: Record<string, unknown>; top?: Record<string, unknown> } = {},
  sub = '',
): string {
  const folder = join(dir, `cfg${n++}`, sub);
  mkdirSync(folder, { recursive: true });
  const file = join(folder, 'config');
  writeFileSync(
    file,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': 'c',
      clusters: [{ name: 'k', cluster: { server: 'https://127.0.0.1:6443', ...opts.cluster } }],
      users: [{ name: 'u', user: { token: 't0k3n', ...opts.user } }],
      contexts: [{ name: 'c', context: { cluster: 'k', user: 'u', ...opts.context } }],
      ...opts.top,
    }),
  );
  return file;
}

const load = (file: string, context?: string): KubeContext => loadKubeContext({ kubeconfig: file, ...(context !== undefined ? { context } : {}) }, {});

/** The kubeconfig is refused: E_CONFIG, one line, naming the file and the field. */
function refused(file: string, field: string, message: RegExp): void {
  assert.throws(
    () => load(file),
    (e: unknown) => {
      assert.ok(e instanceof FluxstrapError, String(e));
      assert.equal(e.code, 'E_CONFIG');
      assert.deepEqual(e.location, { file, field });
      assert.match(e.message, message);
      assert.doesNotMatch(e.message, /\n/);
      return true;
    },
  );
}

void describe('kubeconfig: impersonation', () => {
  void it('as, as-uid, as-groups and as-user-extra become the Impersonate-* headers kubectl sends', () => {
    const file = kubeconfig({
      user: { as: 'jane', 'as-uid': '42', 'as-groups': ['dev', 'ops'], 'as-user-extra': { scopes: ['view', 'edit'], 'acme.com/project': ['p1'] } },
    });
    assert.deepEqual(load(file).impersonation, [
      ['Impersonate-User', 'jane'],
      ['Impersonate-Uid', '42'],
      ['Impersonate-Group', 'dev'],
      ['Impersonate-Group', 'ops'],
      ['Impersonate-Extra-scopes', 'view'],
      ['Impersonate-Extra-scopes', 'edit'],
      ['Impersonate-Extra-acme.com%2Fproject', 'p1'],
    ]);
    assert.deepEqual(load(kubeconfig()).impersonation, []);
  });

  void it('escapes extra keys as client-go does: token characters stay, others and % become %XX of their UTF-8 bytes', () => {
    assert.equal(headerKeyEscape("a-Z_0.~!#$&'*+^`|"), "a-Z_0.~!#$&'*+^`|");
    assert.equal(headerKeyEscape('a b/c%d:é'), 'a%20b%2Fc%25d%3A%C3%A9');
  });

  void it('refuses groups, a uid or extras without as, as kubectl does', () => {
    refused(kubeconfig({ user: { 'as-groups': ['dev'] } }), 'users[u].user.as-groups', /as-groups without as/);
    refused(kubeconfig({ user: { 'as-uid': '1' } }), 'users[u].user.as-uid', /as-uid without as/);
    refused(kubeconfig({ user: { 'as-user-extra': { k: ['v'] } } }), 'users[u].user.as-user-extra', /without as/);
  });

  void it('refuses values of the wrong type and control characters', () => {
    refused(kubeconfig({ user: { as: 'jane', 'as-groups': 'dev' } }), 'users[u].user.as-groups', /list of strings/);
    refused(kubeconfig({ user: { as: 'jane', 'as-user-extra': { k: 'v' } } }), 'users[u].user.as-user-extra.k', /list of strings/);
    refused(kubeconfig({ user: { as: 'jane\nEvil: 1' } }), 'users[u].user.as', /control character/);
  });
});

void describe('kubeconfig: every field', () => {
  void it('cluster server: required, a URL; a trailing slash is dropped', () => {
    assert.equal(load(kubeconfig({ cluster: { server: 'https://h:1/' } })).server, 'https://h:1');
    refused(kubeconfig({ cluster: { server: '' } }), 'clusters[k].cluster.server', /has no server/);
    refused(kubeconfig({ cluster: { server: 'not a url' } }), 'clusters[k].cluster.server', /not a URL/);
  });

  void it('certificate-authority(-data): data, or a file relative to the kubeconfig; not both; base64 checked', () => {
    assert.equal(load(kubeconfig({ cluster: { 'certificate-authority-data': b64(PEM) } })).tls.ca?.toString(), PEM);
    const file = kubeconfig({ cluster: { 'certificate-authority': 'ca.pem' } });
    writeFileSync(join(file, '..', 'ca.pem'), PEM);
    assert.equal(load(file).tls.ca?.toString(), PEM);
    refused(
      kubeconfig({ cluster: { 'certificate-authority': 'missing.pem' } }),
      'clusters[k].cluster.certificate-authority',
      /cannot read certificate-authority .*missing\.pem: ENOENT/,
    );
    refused(
      kubeconfig({ cluster: { 'certificate-authority': 'ca.pem', 'certificate-authority-data': b64(PEM) } }),
      'clusters[k].cluster.certificate-authority-data',
      /both set/,
    );
    refused(kubeconfig({ cluster: { 'certificate-authority-data': 'not base64!' } }), 'clusters[k].cluster.certificate-authority-data', /not base64/);
  });

  void it('insecure-skip-tls-verify: honoured, refused with a CA (as client-go), must be a boolean', () => {
    assert.equal(load(kubeconfig({ cluster: { 'insecure-skip-tls-verify': true } })).tls.insecure, true);
    assert.equal(load(kubeconfig()).tls.insecure, false);
    refused(
      kubeconfig({ cluster: { 'insecure-skip-tls-verify': true, 'certificate-authority-data': b64(PEM) } }),
      'clusters[k].cluster.insecure-skip-tls-verify',
      /refuses both/,
    );
    refused(kubeconfig({ cluster: { 'insecure-skip-tls-verify': 'yes' } }), 'clusters[k].cluster.insecure-skip-tls-verify', /true or false/);
  });

  void it('tls-server-name is the TLS server name; disable-compression is read', () => {
    assert.equal(load(kubeconfig({ cluster: { 'tls-server-name': 'kubernetes' } })).tls.serverName, 'kubernetes');
    assert.equal(load(kubeconfig({ cluster: { 'disable-compression': true } })).disableCompression, true);
    assert.equal(load(kubeconfig()).disableCompression, false);
    refused(kubeconfig({ cluster: { 'disable-compression': 1 } }), 'clusters[k].cluster.disable-compression', /true or false/);
  });

  void it('proxy-url goes to @kubernetes/client-node; a scheme kubectl does not know is refused', () => {
    assert.deepEqual(load(kubeconfig({ cluster: { 'proxy-url': 'socks5://127.0.0.1:1080' } })).delegate, {
      reason: 'proxy-url',
      proxyUrl: 'socks5://127.0.0.1:1080',
    });
    refused(kubeconfig({ cluster: { 'proxy-url': 'ftp://p' } }), 'clusters[k].cluster.proxy-url', /not an http, https or socks5 URL/);
  });

  void it('client-certificate(-data) and client-key(-data): data or files; not both; never one without the other', () => {
    const tls = load(kubeconfig({ user: { 'client-certificate-data': b64(PEM), 'client-key-data': b64('KEY') } })).tls;
    assert.deepEqual([tls.cert?.toString(), tls.key?.toString()], [PEM, 'KEY']);
    const file = kubeconfig({ user: { 'client-certificate': 'c.pem', 'client-key': 'k.pem' } });
    writeFileSync(join(file, '..', 'c.pem'), PEM);
    writeFileSync(join(file, '..', 'k.pem'), 'KEY');
    assert.equal(load(file).tls.key?.toString(), 'KEY');
    refused(kubeconfig({ user: { 'client-certificate-data': b64(PEM) } }), 'users[u].user.client-certificate', /without client-key/);
    refused(kubeconfig({ user: { 'client-key-data': b64('KEY') } }), 'users[u].user.client-key', /without client-certificate/);
    refused(
      kubeconfig({ user: { 'client-key-data': b64('K'), 'client-key': 'k.pem', 'client-certificate-data': b64(PEM) } }),
      'users[u].user.client-key-data',
      /both set/,
    );
  });

  void it('token, tokenFile (it wins; the token stands in while it cannot be read), username/password; never a token with a password', () => {
    assert.equal(load(kubeconfig()).authorization(), 'Bearer t0k3n');
    const file = kubeconfig({ user: { tokenFile: 'token' } });
    writeFileSync(join(file, '..', 'token'), 'from-file\n');
    assert.equal(load(file).authorization(), 'Bearer from-file');
    assert.equal(load(kubeconfig({ user: { tokenFile: 'nowhere' } })).authorization(), 'Bearer t0k3n');
    refused(kubeconfig({ user: { token: '', tokenFile: 'nowhere' } }), 'users[u].user.tokenFile', /cannot read tokenFile/);
    assert.equal(load(kubeconfig({ user: { token: '', username: 'admin', password: 'pw' } })).authorization(), `Basic ${b64('admin:pw')}`);
    refused(kubeconfig({ user: { username: 'admin', password: 'pw' } }), 'users[u].user.token', /only one way to log in/);
    assert.equal(load(kubeconfig({ user: { token: '' } })).authorization(), undefined);
  });

  void it('exec goes to @kubernetes/client-node with its command (relative to the kubeconfig when it is a path), args and env', () => {
    const file = kubeconfig({
      user: {
        token: '',
        exec: {
          apiVersion: 'client.authentication.k8s.io/v1',
          command: './bin/login',
          args: ['--x'],
          env: [{ name: 'A', value: 'b' }],
          interactiveMode: 'Never',
          installHint: 'install login',
        },
      },
    });
    assert.deepEqual(load(file).delegate, {
      reason: `exec plugin ${join(file, '..', 'bin', 'login')}`,
      exec: {
        command: join(file, '..', 'bin', 'login'),
        args: ['--x'],
        env: [{ name: 'A', value: 'b' }],
        apiVersion: 'client.authentication.k8s.io/v1',
        installHint: 'install login',
      },
    });
    assert.equal(load(kubeconfig({ user: { exec: { apiVersion: 'client.authentication.k8s.io/v1beta1', command: 'aws' } } })).delegate?.exec?.command, 'aws');
  });

  void it('exec: what kubectl refuses, and what fluxstrap cannot do through the client, is refused', () => {
    const exec = (e: Record<string, unknown>) =>
      kubeconfig({ user: { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: 'x', interactiveMode: 'Never', ...e } } });
    refused(exec({ command: '' }), 'users[u].user.exec.command', /needs a command/);
    refused(exec({ apiVersion: '' }), 'users[u].user.exec.apiVersion', /needs an apiVersion/);
    refused(exec({ apiVersion: 'client.authentication.k8s.io/v1alpha1' }), 'users[u].user.exec.apiVersion', /is not client.authentication.k8s.io\/v1 or/);
    refused(exec({ interactiveMode: undefined }), 'users[u].user.exec.interactiveMode', /needs interactiveMode/);
    refused(exec({ env: [{ value: 'v' }] }), 'users[u].user.exec.env[0].name', /needs a name/);
    refused(exec({ interactiveMode: 'Sometimes' }), 'users[u].user.exec.interactiveMode', /not Never, IfAvailable or Always/);
    refused(exec({ interactiveMode: 'Always' }), 'users[u].user.exec.interactiveMode', /without a terminal/);
    refused(exec({ provideClusterInfo: true }), 'users[u].user.exec.provideClusterInfo', /cannot pass the cluster/);
    refused(
      kubeconfig({ user: { exec: { apiVersion: 'client.authentication.k8s.io/v1beta1', command: 'x' }, 'auth-provider': { name: 'oidc' } } }),
      'users[u].user.exec',
      /both set/,
    );
  });

  void it('auth-provider goes to @kubernetes/client-node with its config', () => {
    assert.deepEqual(load(kubeconfig({ user: { 'auth-provider': { name: 'oidc', config: { 'idp-issuer-url': 'https://i' } } } })).delegate, {
      reason: 'auth provider oidc',
      authProvider: { name: 'oidc', config: { 'idp-issuer-url': 'https://i' } },
    });
  });

  void it('context namespace: where objects without one go (default: default), a DNS label', () => {
    assert.equal(load(kubeconfig({ context: { namespace: 'team-a' } })).namespace, 'team-a');
    assert.equal(load(kubeconfig()).namespace, 'default');
    refused(kubeconfig({ context: { namespace: 'Team_A' } }), 'contexts[c].context.namespace', /not a DNS label/);
  });

  void it('a context whose user or cluster is missing is refused, never run without credentials', () => {
    refused(kubeconfig({ context: { user: 'nobody' } }), 'contexts[c].context.user', /user "nobody" .* is not in the kubeconfig/);
    refused(kubeconfig({ context: { user: '' } }), 'contexts[c].context.user', /names no user/);
    refused(kubeconfig({ context: { cluster: 'nowhere' } }), 'contexts[c].context.cluster', /cluster "nowhere"/);
    assert.throws(
      () => load(kubeconfig(), 'other'),
      (e: unknown) => e instanceof FluxstrapError && e.code === 'E_NOT_FOUND' && /known contexts: c/.test(e.hint ?? ''),
    );
  });

  void it('extensions and preferences are ignored, as kubectl ignores them', () => {
    const ext = [{ name: 'x', extension: { a: 1 } }];
    const kc = load(
      kubeconfig({
        cluster: { extensions: ext },
        user: { extensions: ext },
        context: { extensions: ext },
        top: { extensions: ext, preferences: { colors: true } },
      }),
    );
    assert.equal(kc.delegate, undefined);
  });

  void it('a kubeconfig that is not a map, lists that are not lists and entries without a name are refused, naming the file', () => {
    const bad = (text: string, field: string | undefined, message: RegExp) => {
      const file = join(dir, `bad-${n++}`);
      writeFileSync(file, text);
      assert.throws(
        () => load(file),
        (e: unknown) =>
          e instanceof FluxstrapError && e.code === 'E_CONFIG' && e.location?.file === file && e.location.field === field && message.test(e.message),
      );
    };
    bad('- a\n', undefined, /a kubeconfig is a map/);
    bad('users: {a: 1}\n', 'users', /users must be a list/);
    bad('users: [{user: {token: x}}]\n', 'users[0].name', /needs a name/);
    bad('a: [\n', undefined, /cannot load kubeconfig/);
  });

  void it('keys named __proto__ or constructor are names like any other', () => {
    const file = join(dir, 'proto-config');
    writeFileSync(
      file,
      'current-context: __proto__\nclusters: [{name: constructor, cluster: {server: "https://h"}}]\nusers: [{name: toString, user: {token: x}}]\ncontexts: [{name: __proto__, context: {cluster: constructor, user: toString}}]\n',
    );
    assert.equal(load(file).server, 'https://h');
    refused(kubeconfig({ context: { user: 'hasOwnProperty' } }), 'contexts[c].context.user', /not in the kubeconfig/);
  });
});

void describe('KUBECONFIG lists, merged as kubectl merges them', () => {
  void it('the first file to name a cluster, user or context wins, and the first current-context; paths are relative to their file; missing files are skipped', () => {
    const first = kubeconfig({ user: { token: 'first' }, cluster: { 'certificate-authority': 'ca.pem' } }, 'one');
    writeFileSync(join(first, '..', 'ca.pem'), PEM);
    const second = join(dir, 'second-config');
    writeFileSync(
      second,
      stringify({
        'current-context': 'other',
        clusters: [
          { name: 'k', cluster: { server: 'https://second' } },
          { name: 'k2', cluster: { server: 'https://k2' } },
        ],
        users: [{ name: 'u', user: { token: 'second' } }],
        contexts: [
          { name: 'c', context: { cluster: 'k2', user: 'u' } },
          { name: 'other', context: { cluster: 'k2', user: 'u' } },
        ],
      }),
    );
    const env = { KUBECONFIG: [join(dir, 'missing'), first, second].join(':') };
    const kc = loadKubeContext({}, env);
    assert.deepEqual([kc.context, kc.server, kc.authorization(), kc.tls.ca?.toString(), kc.file], ['c', 'https://127.0.0.1:6443', 'Bearer first', PEM, first]);
    assert.equal(loadKubeContext({ context: 'other' }, env).server, 'https://k2');
    assert.throws(() => loadKubeContext({}, { KUBECONFIG: join(dir, 'missing') }), /no current context/);
    assert.throws(
      () => loadKubeContext({ kubeconfig: join(dir, 'missing') }, {}),
      (e: unknown) => e instanceof FluxstrapError && e.code === 'E_CONFIG' && /no such file/.test(e.message),
    );
  });
});

/** A plain-HTTP stand-in for the API server that records the headers of each request. */
async function recordingServer(): Promise<{ url: string; seen: IncomingHttpHeaders[]; close: () => void }> {
  const seen: IncomingHttpHeaders[] = [];
  const server = createServer((req, res) => {
    seen.push(req.headers);
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ gitVersion: 'v1.36.3', major: '1', minor: '36' }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, close: () => server.close() };
}

void describe('the headers reach the API server', () => {
  const user = { as: 'jane', 'as-groups': ['dev', 'ops'], 'as-user-extra': { 'acme.com/p': ['x'] }, 'as-uid': 'ü1' };

  void it('natively: the token and every Impersonate-* header, groups repeated', async () => {
    const api = await recordingServer();
    try {
      const kube = await connectKube({ kubeconfig: kubeconfig({ cluster: { server: api.url }, user }) });
      await kube.serverVersion();
      const [h] = api.seen;
      assert.equal(h?.authorization, 'Bearer t0k3n');
      assert.equal(h?.['accept-encoding'], undefined, 'node:http never asks for compression');
      assert.equal(h?.['impersonate-user'], 'jane');
      // node:http joins a repeated request header with ", " when it reads it.
      assert.equal(h?.['impersonate-group'], 'dev, ops');
      assert.equal(h?.['impersonate-extra-acme.com%2fp'], 'x');
      assert.equal(Buffer.from(h?.['impersonate-uid'] as string, 'latin1').toString('utf8'), 'ü1');
    } finally {
      api.close();
    }
  });

  void it('through @kubernetes/client-node for an exec plugin: its token and the same impersonation', async () => {
    const api = await recordingServer();
    const plugin = join(dir, 'plugin.sh');
    writeFileSync(plugin, `#!/bin/sh\necho '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"from-exec"}}'\n`);
    chmodSync(plugin, 0o755);
    try {
      // The client refuses plain HTTP unless TLS checks are off (a real API server is HTTPS).
      const kube = await connectKube({
        kubeconfig: kubeconfig({
          cluster: { server: api.url, 'insecure-skip-tls-verify': true, 'disable-compression': true },
          user: { ...user, token: '', exec: { apiVersion: 'client.authentication.k8s.io/v1', command: plugin, interactiveMode: 'Never' } },
        }),
      });
      await kube.serverVersion();
      const [h] = api.seen;
      assert.equal(h?.authorization, 'Bearer from-exec');
      assert.equal(h?.['accept-encoding'], 'identity', 'disable-compression');
      assert.equal(h?.['impersonate-user'], 'jane');
      assert.equal(h?.['impersonate-group'], 'dev, ops');
      assert.equal(h?.['impersonate-extra-acme.com%2fp'], 'x');
    } finally {
      api.close();
    }
  });

  void it('a failing exec plugin is one E_KUBE line with its installHint', async () => {
    const kube = await connectKube({
      kubeconfig: kubeconfig({
        user: {
          token: '',
          exec: { apiVersion: 'client.authentication.k8s.io/v1beta1', command: join(dir, 'no-such-plugin'), installHint: 'install it with apt' },
        },
      }),
    });
    await assert.rejects(
      kube.serverVersion(),
      (e: unknown) =>
        e instanceof FluxstrapError && e.code === 'E_KUBE' && /exec plugin/.test(e.message) && e.hint === 'install it with apt' && !e.message.includes('\n'),
    );
  });
});
