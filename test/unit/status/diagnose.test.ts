import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { diagnose } from '../../../src/status/diagnose.ts';
import type { Finding } from '../../../src/status/diagnose.ts';
import type { AgeSecretState, GpgSecretState, LiveState, Observed } from '../../../src/status/observed.ts';
import { exitCodeOf, findingLines } from '../../../src/flows/status.ts';

const CLUSTER_KEY = 'age1cluster';
const OTHER_KEY = 'age1other';
const HEAD = 'a'.repeat(40);
const ready = { type: 'Ready', status: 'True', reason: 'ReconciliationSucceeded', message: 'ok' };

/** A cluster right after a bootstrap: every finding ok. */
function healthy(): Observed & { live: LiveState & { ageSecret: AgeSecretState } } {
  return {
    cluster: { name: 'prod', path: 'clusters/prod' },
    keyType: 'age',
    api: { server: 'https://127.0.0.1:6443', context: 'prod', version: { gitVersion: 'v1.36.3', major: 1, minor: 36 } },
    live: {
      crds: [{ name: 'gitrepositories.source.toolkit.fluxcd.io', state: { done: true, reason: 'established' } }],
      controllers: [
        { namespace: 'flux-system', name: 'kustomize-controller', state: { done: true, reason: 'available' }, conditions: 'Available=True' },
        { namespace: 'flux-system', name: 'source-controller', state: { done: true, reason: 'available' }, conditions: 'Available=True' },
      ],
      gitRepository: { ref: 'GitRepository flux-system/flux-system', suspended: false, ready, revision: `main@sha1:${HEAD}`, branch: 'main' },
      remote: { head: HEAD },
      kustomization: {
        ref: 'Kustomization flux-system/flux-system',
        suspended: false,
        ready,
        revision: `main@sha1:${HEAD}`,
        namespace: 'flux-system',
        decryption: { provider: 'sops', secretRef: { name: 'sops-age' } },
      },
      expectedSecretName: 'sops-age',
      ageSecret: { ref: 'Secret flux-system/sops-age', exists: true, ageKeys: ['age.agekey'], otherKeys: [], recipients: [CLUSTER_KEY], unreadable: [] },
      decrypting: [{ ref: 'Kustomization flux-system/flux-system', suspended: false, ready }],
    },
    sopsRule: { recipients: [CLUSTER_KEY] },
    localKey: { recipients: [CLUSTER_KEY] },
    files: [
      {
        name: 'clusters/prod/apps/db.sops.yaml',
        recipients: [CLUSTER_KEY],
        by: ['Kustomization flux-system/apps (clusters/prod/apps.yaml:1)'],
        rule: [CLUSTER_KEY],
      },
    ],
    reach: {
      kustomizations: [
        { ref: 'Kustomization flux-system/flux-system (clusters/prod/flux-system/gotk-sync.yaml)', path: 'clusters/prod', sops: [] },
        { ref: 'Kustomization flux-system/apps (clusters/prod/apps.yaml:1)', path: 'clusters/prod/apps', sops: ['clusters/prod/apps/db.sops.yaml'] },
      ],
      notChecked: [],
      issues: [],
      undecrypted: [],
    },
  };
}

const notOk = (fs: Finding[]) => fs.filter((f) => f.status !== 'ok');

void describe('diagnose', () => {
  void it('finds nothing wrong with a freshly bootstrapped cluster', () => {
    const fs = diagnose(healthy());
    assert.deepEqual(notOk(fs), []);
    assert.deepEqual(
      [...new Set(fs.map((f) => f.check))],
      [
        'api',
        'crds',
        'controller',
        'git-repository',
        'git-head',
        'kustomization',
        'decryption',
        'sops-age-secret',
        'sops-reach',
        'sops-config',
        'local-key',
        'sops-files',
        'kustomizations-decrypting',
      ],
    );
  });

  const cases: { name: string; change: (o: ReturnType<typeof healthy>) => void; want: { check: string; status: 'warn' | 'fail'; message: RegExp }[] }[] = [
    {
      name: 'unreachable API: one failure, nothing guessed about the cluster',
      change: (o) => {
        o.api = { error: { what: 'https://127.0.0.1:1 is unreachable (ECONNREFUSED)', fix: 'start it' } };
        delete (o as Observed).live;
      },
      want: [{ check: 'api', status: 'fail', message: /unreachable \(ECONNREFUSED\)/ }],
    },
    {
      name: 'a flux-system folder that does not build: a failure with the build error',
      change: (o) => {
        (o as Observed).build = { error: { what: 'missing.yaml: no such file or directory (clusters/prod/flux-system/kustomization.yaml)', fix: 'fix it' } };
      },
      want: [{ check: 'flux-system-build', status: 'fail', message: /clusters\/prod\/flux-system does not build: missing\.yaml: no such file/ }],
    },
    {
      name: 'a cluster the context may not read: one failure naming why',
      change: (o) => {
        (o as Observed).live = { error: { what: 'forbidden: cannot list namespaces', fix: 'use another context' } };
      },
      want: [{ check: 'cluster', status: 'fail', message: /^cannot read the cluster: forbidden/ }],
    },
    {
      name: 'old Kubernetes',
      change: (o) => {
        o.api = { server: 's', context: 'c', version: { gitVersion: 'v1.28.0', major: 1, minor: 28 } };
      },
      want: [{ check: 'api', status: 'warn', message: /older than 1\.32/ }],
    },
    {
      name: 'a CRD not established',
      change: (o) => {
        o.live.crds = [{ name: 'kustomizations.kustomize.toolkit.fluxcd.io', state: { done: false, reason: 'does not exist' } }];
      },
      want: [{ check: 'crds', status: 'fail', message: /kustomizations\.kustomize\.toolkit\.fluxcd\.io \(does not exist\)/ }],
    },
    {
      name: 'a controller down, named with its conditions',
      change: (o) => {
        o.live.controllers[0] = {
          namespace: 'flux-system',
          name: 'kustomize-controller',
          state: { done: false, reason: '0/1 replicas available, 1/1 updated' },
          conditions: 'Available=False (MinimumReplicasUnavailable: down)',
        };
      },
      want: [
        {
          check: 'controller',
          status: 'fail',
          message: /^Deployment flux-system\/kustomize-controller is not available: 0\/1 replicas.*Available=False \(MinimumReplicasUnavailable/,
        },
      ],
    },
    {
      name: 'GitRepository missing',
      change: (o) => {
        delete o.live.gitRepository;
      },
      want: [{ check: 'git-repository', status: 'fail', message: /GitRepository flux-system\/flux-system does not exist/ }],
    },
    {
      name: 'GitRepository behind the branch',
      change: (o) => {
        o.live.remote = { head: 'b'.repeat(40) };
      },
      want: [{ check: 'git-head', status: 'warn', message: /at aaaaaaaaaaaa, main on the Git server is at bbbbbbbbbbbb/ }],
    },
    {
      name: 'no Git credentials: the HEAD comparison is skipped with a warning',
      change: (o) => {
        o.live.remote = { skipped: { what: 'no Git credentials configured for this cluster', fix: 'configure them' } };
      },
      want: [{ check: 'git-head', status: 'warn', message: /not checked: no Git credentials/ }],
    },
    {
      name: 'Kustomization failing to decrypt: its error, and in the cluster-wide list',
      change: (o) => {
        const failed = {
          type: 'Ready',
          status: 'False',
          reason: 'ReconciliationFailed',
          message: "decryption failed for 'db': no identity matched any of the recipients",
        };
        Object.assign(o.live.kustomization ?? {}, { ready: failed });
        o.live.decrypting = [
          { ref: 'Kustomization flux-system/flux-system', suspended: false, ready: failed },
          { ref: 'Kustomization apps/web', suspended: false, ready },
        ];
      },
      want: [
        { check: 'kustomization', status: 'fail', message: /not Ready: ReconciliationFailed: decryption failed for 'db'/ },
        { check: 'kustomizations-decrypting', status: 'fail', message: /^Kustomization flux-system\/flux-system fails to decrypt/ },
      ],
    },
    {
      name: 'a failure that is not about decryption is not a decryption failure',
      change: (o) => {
        o.live.decrypting = [
          { ref: 'Kustomization apps/web', suspended: false, ready: { type: 'Ready', status: 'False', message: 'Service/web dry-run failed' } },
        ];
      },
      want: [],
    },
    {
      name: 'suspended Kustomization',
      change: (o) => {
        Object.assign(o.live.kustomization ?? {}, { suspended: true });
      },
      want: [{ check: 'kustomization', status: 'warn', message: /is suspended/ }],
    },
    {
      name: 'a routine reconcile in progress is fine',
      change: (o) => {
        Object.assign(o.live.kustomization ?? {}, { ready: { type: 'Ready', status: 'Unknown', reason: 'Progressing' } });
      },
      want: [],
    },
    {
      name: 'a first reconcile in progress is not known to work yet',
      change: (o) => {
        o.live.gitRepository = {
          ref: 'GitRepository flux-system/flux-system',
          suspended: false,
          ready: { type: 'Ready', status: 'Unknown', reason: 'Progressing' },
        };
      },
      want: [{ check: 'git-repository', status: 'warn', message: /reconciling for the first time \(Progressing\)/ }],
    },
    {
      name: 'Kustomization without decryption',
      change: (o) => {
        delete o.live.kustomization?.decryption;
      },
      want: [{ check: 'decryption', status: 'fail', message: /has no spec\.decryption/ }],
    },
    {
      name: 'decryption without secretRef and no controller flag: nothing names the key',
      change: (o) => {
        if (o.live.kustomization) o.live.kustomization.decryption = { provider: 'sops' };
      },
      want: [{ check: 'decryption', status: 'fail', message: /decryption names no secretRef/ }],
    },
    {
      name: 'decryption without secretRef, the key named by kustomize-controller --sops-age-secret: healthy',
      change: (o) => {
        if (o.live.kustomization) o.live.kustomization.decryption = { provider: 'sops' };
        o.live.controllerSecret = 'sops-age';
      },
      want: [],
    },
    {
      name: 'secretRef other than the repository patch names',
      change: (o) => {
        o.live.expectedSecretName = 'sops-keys';
      },
      want: [{ check: 'decryption', status: 'fail', message: /decrypts with Secret sops-age, the repository's decryption patch names sops-keys/ }],
    },
    {
      name: 'sops-age Secret deleted: named, and no key comparisons on top',
      change: (o) => {
        o.live.ageSecret = { ref: 'Secret flux-system/sops-age', exists: false, ageKeys: [], otherKeys: [], recipients: [], unreadable: [] };
      },
      want: [{ check: 'sops-age-secret', status: 'fail', message: /^Secret flux-system\/sops-age does not exist/ }],
    },
    {
      name: 'sops-age Secret under a key kustomize-controller ignores',
      change: (o) => {
        o.live.ageSecret = { ...o.live.ageSecret, ageKeys: [], otherKeys: ['keys.txt'], recipients: [] };
      },
      want: [{ check: 'sops-age-secret', status: 'fail', message: /no key ending in \.agekey \(it has keys\.txt\)/ }],
    },
    {
      name: 'sops-age Secret with an extra key',
      change: (o) => {
        o.live.ageSecret = { ...o.live.ageSecret, otherKeys: ['notes'] };
      },
      want: [{ check: 'sops-age-secret', status: 'warn', message: /ignores \(notes\)/ }],
    },
    {
      name: 'sops-age Secret holding something else than an identity',
      change: (o) => {
        o.live.ageSecret = { ...o.live.ageSecret, recipients: [], unreadable: ['age.agekey: not an age identity line (age.agekey:1)'] };
      },
      want: [{ check: 'sops-age-secret', status: 'fail', message: /not age identities \(age\.agekey: not an age identity line/ }],
    },
    {
      name: 'a different key in the cluster: .sops.yaml, the local key and the files all say so',
      change: (o) => {
        o.live.ageSecret = { ...o.live.ageSecret, recipients: [OTHER_KEY] };
      },
      want: [
        {
          check: 'sops-config',
          status: 'fail',
          message:
            /^cluster key does not match \.sops\.yaml recipients for clusters\/prod\/apps\/db\.sops\.yaml \(rule names age1cluster\) \(cluster: age1other\)/,
        },
        { check: 'local-key', status: 'warn', message: /local age key \(age1cluster\) differs from the cluster key \(age1other\)/ },
        {
          check: 'sops-files',
          status: 'fail',
          message:
            /cannot open 1 of 1 SOPS file\(s\) the cluster reaches: clusters\/prod\/apps\/db\.sops\.yaml \(applied by Kustomization flux-system\/apps \(clusters\/prod\/apps\.yaml:1\); encrypted to age1cluster\)/,
        },
      ],
    },
    {
      name: 'a file encrypted only to another key',
      change: (o) => {
        o.files.push({ name: 'clusters/prod/apps/api.sops.yaml', recipients: [OTHER_KEY], by: [], rule: [CLUSTER_KEY] });
      },
      want: [{ check: 'sops-files', status: 'fail', message: /cannot open 1 of 2 SOPS file\(s\) the cluster reaches: clusters\/prod\/apps\/api\.sops\.yaml/ }],
    },
    {
      name: 'no creation rule for the cluster and no SOPS file yet',
      change: (o) => {
        o.sopsRule = { error: { what: 'no creation rule in .sops.yaml matches files under clusters/prod', fix: 'run init' } };
        o.files = [];
        if (!('error' in o.reach)) o.reach.kustomizations = o.reach.kustomizations.map((k) => ({ ...k, sops: [] }));
      },
      want: [
        {
          check: 'sops-reach',
          status: 'warn',
          message: /the cluster reaches no SOPS-encrypted file \(Kustomization flux-system\/flux-system .* → clusters\/prod, Kustomization flux-system\/apps/,
        },
        { check: 'sops-config', status: 'fail', message: /no creation rule/ },
      ],
    },
    {
      name: 'a reached file no creation rule matches',
      change: (o) => {
        delete o.files[0]?.rule;
      },
      want: [{ check: 'sops-config', status: 'fail', message: /for clusters\/prod\/apps\/db\.sops\.yaml \(no rule matches\)/ }],
    },
    {
      name: 'a Kustomization that applies SOPS files without decryption, and another source',
      change: (o) => {
        if ('error' in o.reach) return;
        o.reach.undecrypted.push({
          what: 'Kustomization flux-system/apps (clusters/prod/apps.yaml:1) applies SOPS-encrypted clusters/prod/apps/db.sops.yaml but has no spec.decryption',
          fix: 'add decryption',
        });
        o.reach.notChecked.push(
          "Kustomization flux-system/ext applies OCIRepository flux-system/x, not the cluster's GitRepository flux-system/flux-system: its files are not checked (clusters/prod/ext.yaml:1)",
        );
      },
      want: [
        { check: 'sops-reach', status: 'warn', message: /^not checked: Kustomization flux-system\/ext applies OCIRepository/ },
        { check: 'kustomization-decryption', status: 'fail', message: /flux-system\/apps .* has no spec\.decryption/ },
      ],
    },
    {
      name: 'a local key that cannot be read',
      change: (o) => {
        o.localKey = { error: { what: 'not an age identity line (keys.txt:3)', fix: 'fix it' } };
      },
      want: [{ check: 'local-key', status: 'warn', message: /cannot read the local age key: not an age identity line/ }],
    },
    {
      name: 'no local key configured: nothing to compare, nothing reported',
      change: (o) => {
        delete (o as Observed).localKey;
      },
      want: [],
    },
  ];
  for (const c of cases) {
    void it(c.name, () => {
      const o = healthy();
      c.change(o);
      const got = notOk(diagnose(o));
      assert.deepEqual(
        got.map((f) => [f.check, f.status]),
        c.want.map((w) => [w.check, w.status]),
        JSON.stringify(got, null, 2),
      );
      for (const [i, w] of c.want.entries()) {
        assert.match(got[i]?.message ?? '', w.message);
        assert.ok((got[i]?.hint ?? '') !== '', `${w.check} has a hint`);
      }
    });
  }
});

void describe('diagnose with a cloud key (fluxstrap.yaml sopsKey)', () => {
  /** Bootstrapped through the controller's cloud identity alone: no sops-age Secret, decryption without secretRef. */
  function cloudOnly(): ReturnType<typeof healthy> {
    const o = healthy();
    o.ageSecretInUse = false;
    o.live.kustomization = {
      ...o.live.kustomization,
      ref: 'Kustomization flux-system/flux-system',
      suspended: false,
      namespace: 'flux-system',
      decryption: { provider: 'sops' },
    };
    delete o.live.expectedSecretName;
    o.live.ageSecret = { ref: 'Secret flux-system/sops-age', exists: false, ageKeys: [], otherKeys: [], recipients: [], unreadable: [] };
    o.cloudKey = {
      name: 'AWS KMS key arn:aws:kms:eu-west-1:1:key/k',
      passed: ['the .sops.yaml rule lists it', 'AWS KMS key opens the 1 SOPS file(s)'],
      problems: [],
      notes: [],
    };
    return o;
  }

  void it("no sops-age Secret and no secretRef are right; the key's checks are sops-key findings", () => {
    const fs = diagnose(cloudOnly());
    assert.deepEqual(notOk(fs), []);
    assert.ok(!fs.some((f) => f.check === 'sops-age-secret'));
    assert.match(fs.find((f) => f.check === 'decryption')?.message ?? '', /through kustomize-controller's cloud identity/);
    assert.deepEqual(
      fs.filter((f) => f.check === 'sops-key').map((f) => f.message),
      ['the .sops.yaml rule lists it', 'AWS KMS key opens the 1 SOPS file(s)'],
    );
  });

  void it('a failed check fails, a service fluxstrap cannot reach warns, an unreadable repository fails', () => {
    const o = cloudOnly();
    o.cloudKey = {
      name: 'k',
      passed: [],
      problems: [{ what: 'the rule does not list it', fix: 'add it' }],
      notes: ['warning: fluxstrap cannot reach Azure Key Vault'],
    };
    assert.deepEqual(
      notOk(diagnose(o)).map((f) => [f.check, f.status, f.message]),
      [
        ['sops-key', 'fail', 'the rule does not list it'],
        ['sops-key', 'warn', 'fluxstrap cannot reach Azure Key Vault'],
      ],
    );
    o.cloudKey = { name: 'k', error: { what: 'bad .sops.yaml', fix: 'fix it' } };
    assert.deepEqual(
      notOk(diagnose(o)).map((f) => [f.check, f.status, f.message]),
      [['sops-key', 'fail', 'cannot check the k: bad .sops.yaml']],
    );
  });

  void it('with age in use as well, a missing sops-age Secret still fails', () => {
    const o = cloudOnly();
    o.ageSecretInUse = true;
    assert.ok(notOk(diagnose(o)).some((f) => f.check === 'sops-age-secret' && f.status === 'fail'));
  });
});

void describe('exit code and lines', () => {
  const finding = (status: Finding['status']): Finding => ({ check: 'x', status, message: 'm', ...(status === 'ok' ? {} : { hint: 'h' }) });
  const table: [Finding['status'][], boolean, number][] = [
    [['ok', 'ok'], false, 0],
    [['ok', 'warn'], false, 0],
    [['ok', 'warn'], true, 1],
    [['fail'], false, 1],
    [[], true, 0],
  ];
  for (const [statuses, strict, code] of table) {
    void it(`${statuses.join(',') || 'nothing'}${strict ? ' (strict)' : ''} → ${code}`, () => {
      assert.equal(exitCodeOf(statuses.map(finding), strict), code);
    });
  }
  void it('prints the status, the check, the message and the hint, plain without colour', () => {
    assert.deepEqual(findingLines({ check: 'sops-age-secret', status: 'fail', message: 'gone', hint: 'bootstrap' }, false), [
      '✗ fail sops-age-secret: gone',
      '    hint: bootstrap',
    ]);
    assert.deepEqual(findingLines({ check: 'api', status: 'ok', message: 'up' }, false), ['✔ ok   api: up']);
  });
});

void describe('diagnose with Vault transit (sopsKey.vault)', () => {
  const withVault = (vaultSecret: NonNullable<LiveState['vaultSecret']>): Observed => {
    const o = healthy();
    const { ageSecret: _age, ...rest } = o.live;
    return { ...o, live: { ...rest, vaultSecret } };
  };
  const ref = 'Secret flux-system/sops-hcvault';

  void it('a token that opens a Vault-encrypted file: ok, and no age-key findings in its place', () => {
    const fs = diagnose(withVault({ ref, exists: true, hasToken: true, proof: { opened: 'clusters/prod/apps/db.yaml' } }));
    assert.deepEqual(notOk(fs), []);
    assert.match(fs.find((f) => f.check === 'sops-hcvault-secret')?.message ?? '', /opens clusters\/prod\/apps\/db\.yaml/);
    assert.ok(!fs.some((f) => f.check === 'sops-age-secret' || f.check === 'local-key'));
  });

  void it('a missing Secret, a missing token, a token Vault refuses: one failure each', () => {
    assert.match(notOk(diagnose(withVault({ ref, exists: false, hasToken: false })))[0]?.message ?? '', /does not exist/);
    assert.match(notOk(diagnose(withVault({ ref, exists: true, hasToken: false })))[0]?.message ?? '', /no sops\.vault-token/);
    const refused = notOk(
      diagnose(
        withVault({
          ref,
          exists: true,
          hasToken: true,
          proof: {
            problem: {
              what: 'the Vault token in Secret flux-system/sops-hcvault (sops.vault-token) does not open x.yaml: permission denied',
              fix: 'give it a policy',
            },
          },
        }),
      ),
    );
    assert.deepEqual(
      refused.map((f) => [f.check, f.status]),
      [['sops-hcvault-secret', 'fail']],
    );
  });
});

void describe('diagnose a cluster whose key is OpenPGP (sops-gpg)', () => {
  const FPR = '0123456789ABCDEF0123456789ABCDEF01234567';
  const OTHER_FPR = 'FEDCBA9876543210FEDCBA9876543210FEDCBA98';
  function pgpHealthy(): Observed & { live: LiveState & { gpgSecret: GpgSecretState } } {
    const { live, ...o } = healthy();
    const { ageSecret: _age, ...rest } = live;
    return {
      ...o,
      keyType: 'pgp',
      live: {
        ...rest,
        ...(rest.kustomization ? { kustomization: { ...rest.kustomization, decryption: { provider: 'sops', secretRef: { name: 'sops-gpg' } } } } : {}),
        expectedSecretName: 'sops-gpg',
        gpgSecret: {
          ref: 'Secret flux-system/sops-gpg',
          exists: true,
          ascKeys: [`${FPR}.asc`],
          otherKeys: [],
          fingerprints: [FPR],
          unreadable: [],
          tried: 1,
          closed: [],
        },
      },
      sopsRule: { recipients: [FPR] },
      localKey: { recipients: [FPR] },
      // A PGP file has no age recipients: whether it opens is the Secret's key tried on it.
      files: o.files.map((f) => ({ ...f, recipients: [], rule: [FPR] })),
    };
  }

  void it('finds nothing wrong, and checks sops-gpg instead of sops-age', () => {
    const fs = diagnose(pgpHealthy());
    assert.deepEqual(notOk(fs), []);
    assert.ok(!fs.some((f) => f.check === 'sops-age-secret'));
    assert.match(
      fs.find((f) => f.check === 'sops-gpg-secret')?.message ?? '',
      new RegExp(`^Secret flux-system/sops-gpg holds PGP key ${FPR}, which opens 1 of the 1 SOPS file`),
    );
    assert.match(fs.find((f) => f.check === 'local-key')?.message ?? '', /the local PGP key is the cluster key/);
  });

  const cases: { name: string; change: (o: ReturnType<typeof pgpHealthy>) => void; want: { check: string; status: string; message: RegExp }[] }[] = [
    {
      name: 'the Secret deleted',
      change: (o) => {
        o.live.gpgSecret = { ...o.live.gpgSecret, exists: false, ascKeys: [], fingerprints: [], tried: 0 };
      },
      want: [{ check: 'sops-gpg-secret', status: 'fail', message: /^Secret flux-system\/sops-gpg does not exist/ }],
    },
    {
      name: 'the key under a name kustomize-controller does not import',
      change: (o) => {
        o.live.gpgSecret = { ...o.live.gpgSecret, ascKeys: [], otherKeys: ['sops.key'], fingerprints: [], tried: 0 };
      },
      want: [{ check: 'sops-gpg-secret', status: 'fail', message: /has no key ending in \.asc \(it has sops\.key\)/ }],
    },
    {
      name: 'a key locked by a passphrase',
      change: (o) => {
        o.live.gpgSecret = { ...o.live.gpgSecret, fingerprints: [], unreadable: [`${FPR}.asc: OpenPGP key ${FPR} is protected by a passphrase`], tried: 0 };
      },
      want: [{ check: 'sops-gpg-secret', status: 'fail', message: /cannot use \(.*protected by a passphrase\)/ }],
    },
    {
      name: 'another key in the cluster: the Secret, .sops.yaml, the local key and the files all say so',
      change: (o) => {
        o.live.gpgSecret = { ...o.live.gpgSecret, ascKeys: [`${OTHER_FPR}.asc`], fingerprints: [OTHER_FPR], closed: ['clusters/prod/apps/db.sops.yaml'] };
      },
      want: [
        { check: 'sops-gpg-secret', status: 'fail', message: new RegExp(`holds PGP key ${OTHER_FPR}, which opens none of the 1 SOPS file`) },
        {
          check: 'sops-config',
          status: 'fail',
          message: new RegExp(`^cluster key does not match \\.sops\\.yaml recipients for clusters/prod/apps/db\\.sops\\.yaml \\(rule names ${FPR}\\)`),
        },
        { check: 'local-key', status: 'warn', message: new RegExp(`local PGP key \\(${FPR}\\) differs from the cluster key \\(${OTHER_FPR}\\)`) },
        { check: 'sops-files', status: 'fail', message: /cannot open 1 of 1 SOPS file\(s\) the cluster reaches: clusters\/prod\/apps\/db\.sops\.yaml/ },
      ],
    },
  ];
  for (const c of cases) {
    void it(c.name, () => {
      const o = pgpHealthy();
      c.change(o);
      const got = notOk(diagnose(o));
      assert.deepEqual(
        got.map((f) => [f.check, f.status]),
        c.want.map((w) => [w.check, w.status]),
        JSON.stringify(got, null, 2),
      );
      for (const [i, w] of c.want.entries()) {
        assert.match(got[i]?.message ?? '', w.message);
        assert.ok((got[i]?.hint ?? '') !== '', `${w.check} has a hint`);
      }
    });
  }
});
