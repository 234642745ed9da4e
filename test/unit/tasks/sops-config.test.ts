import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FluxstrapError } from '../../../src/core/errors.ts';
import { parseConfig, ruleMatches } from '../../../src/sops/config.ts';
import { stanzaName } from '../../../src/sops/metadata.ts';
import { compilePlaybook } from '../../../src/playbook/loader.ts';
import { builtinKinds } from '../../../src/tasks/registry.ts';
import { pathRegexFor, sopsConfigKind } from '../../../src/tasks/sops-config.ts';
import { planFile } from '../../helpers/file-tasks.ts';

const OURS = 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p';
const OTHER = 'age1lggyhqrw2nlhcxprm67z43rta597azn8gknawjehu9d9dl0jq3yqqvfafg';
const params = { clusterPath: 'clusters/prod', age: [OURS] };

/** The rules as the SOPS engine reads them: path_regex and recipients, in order. */
function rules(text: string): { path?: string; keys: string[] }[] {
  return parseConfig(text, '.sops.yaml').creationRules.map((r) => ({
    ...(r.pathRegex !== undefined ? { path: r.pathRegex } : {}),
    keys: r.keyGroups.flat().map(stanzaName),
  }));
}

const SEED = `# keys for the homelab
creation_rules:
  # every secret file
  - path_regex: .*\\.sops\\.yaml$
    age: ${OTHER} # the old key
`;

void describe('sops-config plan', () => {
  void it('creates .sops.yaml with the rule sops needs for the cluster folder', () => {
    const { changes, after } = planFile(sopsConfigKind, params, undefined);
    assert.equal(changes[0]?.action, 'create');
    assert.equal(
      after,
      `creation_rules:\n  - path_regex: ^clusters/prod/.*\\.ya?ml$\n    encrypted_regex: ^(data|stringData)$\n    mac_only_encrypted: true\n    age: ${OURS}\n`,
    );
    assert.deepEqual(rules(after ?? ''), [{ path: pathRegexFor('clusters/prod'), keys: [OURS] }]);
  });

  void it('mac_only_encrypted: only in a new rule, left out when told, and an existing rule keeps its choice', () => {
    const off = planFile(sopsConfigKind, { ...params, macOnlyEncrypted: false }, undefined).after ?? '';
    assert.doesNotMatch(off, /mac_only_encrypted/);
    const other = 'age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq';
    const existing = `creation_rules:\n  - path_regex: ^clusters/prod/.*\\.ya?ml$\n    mac_only_encrypted: false\n    age: ${other}\n`;
    const updated = planFile(sopsConfigKind, params, existing).after ?? '';
    assert.match(updated, /mac_only_encrypted: false/);
    assert.doesNotMatch(updated, /mac_only_encrypted: true/);
    assert.deepEqual(planFile(sopsConfigKind, params, planFile(sopsConfigKind, params, undefined).after).changes, [], 'idempotent');
  });

  void it('the path regex matches the cluster files only, relative to the repository', () => {
    const re = new RegExp(pathRegexFor('clusters/prod.eu'));
    assert.ok(re.test('clusters/prod.eu/apps/db.yaml') && re.test('clusters/prod.eu/x.yml'));
    assert.ok(!re.test('clusters/prodXeu/x.yaml') && !re.test('clusters/prod.eu2/x.yaml') && !re.test('other/clusters/prod.eu/x.yaml'));
  });

  void it('puts the rule before a rule that would catch the cluster files, keeping comments and the rest', () => {
    const { after, changes } = planFile(sopsConfigKind, params, SEED);
    assert.equal(changes[0]?.action, 'update');
    assert.match(changes[0]?.summary ?? '', /before rule 1/);
    assert.deepEqual(
      rules(after ?? '').map((r) => r.path),
      [pathRegexFor('clusters/prod'), '.*\\.sops\\.yaml$'],
    );
    for (const line of SEED.split('\n')) assert.ok(after?.includes(line), `kept: ${line}`);
    // the comment written above the seed rule stays above it, not above ours
    assert.match(after ?? '', /# every secret file\n {2}- path_regex: \.\*/);
  });

  void it('goes after rules for other clusters and before a final catch-all', () => {
    const text = `creation_rules:\n  - path_regex: ^clusters/staging/.*\\.ya?ml$\n    age: ${OTHER}\n  - age: ${OTHER}\n`;
    const { after } = planFile(sopsConfigKind, params, text);
    assert.deepEqual(
      rules(after ?? '').map((r) => r.path),
      ['^clusters/staging/.*\\.ya?ml$', pathRegexFor('clusters/prod'), undefined],
    );
  });

  void it('appends when no rule would catch the cluster files', () => {
    const text = `creation_rules:\n  - path_regex: ^clusters/staging/\n    age: ${OTHER}\n`;
    assert.deepEqual(
      rules(planFile(sopsConfigKind, params, text).after ?? '').map((r) => r.path),
      ['^clusters/staging/', pathRegexFor('clusters/prod')],
    );
  });

  void it('does not duplicate a rule that is already there, ours or written by hand', () => {
    const ours = planFile(sopsConfigKind, params, undefined).after;
    assert.deepEqual(planFile(sopsConfigKind, params, ours).changes, []);
    const handWritten = `creation_rules:\n  - path_regex: clusters/prod/\n    encrypted_regex: ^(data|stringData)$\n    age: ${OTHER},${OURS}\n`;
    assert.deepEqual(planFile(sopsConfigKind, params, handWritten).changes, []);
  });

  void it('updates the keys of its own rule in place instead of adding a second one', () => {
    const ours = planFile(sopsConfigKind, { ...params, age: [OTHER] }, undefined).after;
    const { after, changes } = planFile(sopsConfigKind, params, ours);
    assert.match(changes[0]?.summary ?? '', /^update the creation rule/);
    assert.deepEqual(rules(after ?? ''), [{ path: pathRegexFor('clusters/prod'), keys: [OURS] }]);
  });

  void it('moves its own rule ahead of a catch-all that was put before it', () => {
    const text = `creation_rules:\n  - path_regex: .*\n    age: ${OTHER}\n  - path_regex: ${pathRegexFor('clusters/prod')}\n    age: ${OURS}\n`;
    const { after } = planFile(sopsConfigKind, params, text);
    assert.deepEqual(
      rules(after ?? '').map((r) => r.path),
      [pathRegexFor('clusters/prod'), '.*'],
    );
  });

  void it('writes pgp fingerprints, and several age recipients as one list', () => {
    const pgp = planFile(sopsConfigKind, { clusterPath: 'clusters/prod', pgp: ['ab12cd34ab12cd34ab12cd34ab12cd34ab12cd34'] }, undefined).after ?? '';
    assert.match(pgp, /pgp: AB12CD34AB12CD34AB12CD34AB12CD34AB12CD34\n/);
    const two = planFile(sopsConfigKind, { clusterPath: 'clusters/prod', age: [OURS, OTHER] }, undefined).after ?? '';
    assert.deepEqual(rules(two)[0]?.keys, [OURS, OTHER]);
  });

  void it('keeps a long post-quantum recipient on one line', () => {
    const pq = `age1pq1${'q'.repeat(1900)}`;
    const after = planFile(sopsConfigKind, { clusterPath: 'clusters/prod', age: [pq] }, undefined).after ?? '';
    assert.ok(after.split('\n').includes(`    age: ${pq}`));
  });

  void it('keeps a file written with flush sequences flush', () => {
    const text = `creation_rules:\n- path_regex: ^other/\n  age: ${OTHER}\n`;
    assert.match(planFile(sopsConfigKind, params, text).after ?? '', /^creation_rules:\n- path_regex: \^other\/\n {2}age: .*\n- path_regex: \^clusters/);
  });

  void it('reports an invalid .sops.yaml with its line and plans nothing', () => {
    const cases: [string, number, RegExp][] = [
      ['creation_rules:\n  - path_regex: [unclosed\n    age: x\n', 3, /^invalid YAML: Flow sequence/],
      ['creation_rules: []\ncreation_rules: []\n', 2, /^invalid YAML: Map keys must be unique/],
      ['creation_rules: yes\n', 1, /creation_rules must be a list/],
      ['creation_rules:\n  - just a string\n', 2, /must be a map/],
      ['- a\n- b\n', 1, /must be a map/],
    ];
    for (const [text, line, message] of cases) {
      assert.throws(
        () => planFile(sopsConfigKind, params, text),
        (e: unknown) =>
          e instanceof FluxstrapError && e.code === 'E_CONFIG' && e.location?.file === '.sops.yaml' && e.location.line === line && message.test(e.message),
        text,
      );
    }
  });

  void describe('with the SOPS files the cluster reaches', () => {
    const reached = ['infrastructure/base/networking/secret.sops.yaml', 'services/base/karakeep/secret.sops.yaml'];
    void it('adds the key to the catch-all that governs them instead of a rule for a folder with no secrets', () => {
      const { after, changes } = planFile(sopsConfigKind, { ...params, reached }, SEED);
      assert.deepEqual(rules(after ?? ''), [{ path: '.*\\.sops\\.yaml$', keys: [OTHER, OURS] }]);
      assert.match(
        changes[0]?.summary ?? '',
        /creation rule at \.sops\.yaml:4 \(path_regex .*\), which governs the 2 SOPS file\(s\) the cluster reaches \(infrastructure\/base\/networking\/secret\.sops\.yaml, services/,
      );
      // comments and the rest stay as written
      assert.match(after ?? '', /# every secret file\n {2}- path_regex: \.\*\\\.sops\\\.yaml\$\n {4}age: age1lgg.*,age1ql3.* # the old key\n/);
    });
    void it('changes nothing when every rule that governs them lists the key', () => {
      const text = SEED.replace(`age: ${OTHER}`, `age: ${OTHER},${OURS}`);
      assert.deepEqual(planFile(sopsConfigKind, { ...params, reached }, text).changes, []);
    });
    void it('adds to a list, and to the first key group', () => {
      const list = `creation_rules:\n  - path_regex: ^infrastructure/\n    age:\n      - ${OTHER}\n  - path_regex: ^services/\n    key_groups:\n      - age: [${OTHER}]\n`;
      const after = planFile(sopsConfigKind, { ...params, reached }, list).after ?? '';
      assert.deepEqual(rules(after), [
        { path: '^infrastructure/', keys: [OTHER, OURS] },
        { path: '^services/', keys: [OTHER, OURS] },
      ]);
    });
    void it('gives files no rule governs a rule naming exactly them', () => {
      const text = `creation_rules:\n  - path_regex: ^infrastructure/\n    age: ${OURS}\n`;
      const after = planFile(sopsConfigKind, { ...params, reached }, text).after ?? '';
      assert.deepEqual(rules(after), [
        { path: '^infrastructure/', keys: [OURS] },
        { path: '^(services/base/karakeep/secret\\.sops\\.yaml)$', keys: [OURS] },
      ]);
    });
  });

  void it('refuses an encryptedRegex RE2 refuses at its playbook line, before writing it into .sops.yaml; takes Go syntax', async () => {
    const playbook = (re: string) => `name: x\ntasks:\n  - sops-config:\n      clusterPath: clusters/prod\n      encryptedRegex: '${re}'\n`;
    const opts = { registry: builtinKinds, builtins: { cluster: { name: 'prod', path: 'clusters/prod' }, check_mode: false } };
    await assert.rejects(
      compilePlaybook(playbook('^(?!metadata)'), 'p.yaml', opts),
      (e: unknown) =>
        e instanceof FluxstrapError &&
        e.code === 'E_CONFIG' &&
        e.location?.line === 5 &&
        /not a valid RE2 regular expression: invalid or unsupported Perl syntax/.test(e.message),
    );
    const pb = await compilePlaybook(playbook('^[[:alpha:]]*[Dd]ata$'), 'p.yaml', opts);
    assert.equal((pb.tasks[0]?.params as { encryptedRegex?: string }).encryptedRegex, '^[[:alpha:]]*[Dd]ata$');
  });
});

void describe('sops-config: encrypted bootstrap Secrets (git.auth.sopsFile)', () => {
  const GIT = 'bootstrap/prod/git-credentials.sops.yaml';
  const withFile = { ...params, bootstrapFiles: [GIT] };
  const ruleFor = (text: string, file: string) => parseConfig(text, '.sops.yaml').creationRules.find((r) => ruleMatches(r, file));

  void it('adds a rule for the *.sops.yaml files of its folder with the cluster keys when no rule matches it, and is then idempotent', () => {
    const { after, changes } = planFile(sopsConfigKind, withFile, undefined);
    assert.match(changes[0]?.summary ?? '', /encrypted bootstrap Secrets in bootstrap\/prod\//);
    const text = after ?? '';
    for (const f of [GIT, 'bootstrap/prod/registry.sops.yaml', 'bootstrap/prod/x.sops.yml'])
      assert.deepEqual(ruleFor(text, f)?.keyGroups.flat().map(stanzaName), [OURS], f);
    for (const f of ['bootstrap/prod/plain.yaml', 'bootstrap/prod/sub/x.sops.yaml', 'bootstrap/prod2/x.sops.yaml', 'x/bootstrap/prod/x.sops.yaml'])
      assert.equal(ruleFor(text, f), undefined, f);
    assert.equal(rules(text)[0]?.path, pathRegexFor('clusters/prod'), 'the cluster rule stays first');
    assert.deepEqual(planFile(sopsConfigKind, withFile, text).changes, [], 'idempotent');
  });

  void it('adds no rule when an existing rule already matches the file', () => {
    const catchAll = `${SEED.trimEnd()}\n  - path_regex: ^clusters/prod/.*\\.ya?ml$\n    age: ${OURS}\n`;
    const text = planFile(sopsConfigKind, withFile, catchAll).after ?? catchAll;
    assert.equal(rules(text).length, 2, 'no rule added');
    assert.equal(ruleFor(text, GIT)?.pathRegex, '.*\\.sops\\.yaml$', 'the seed rule governs it (its keys are its own)');
  });

  void it('in the same change as the cluster rule, with both summaries', () => {
    const { changes } = planFile(sopsConfigKind, withFile, `creation_rules:\n  - path_regex: ^other/\n    age: ${OTHER}\n`);
    assert.equal(changes.length, 1);
    assert.match(changes[0]?.summary ?? '', /creation rule for clusters\/prod.*; add a creation rule for the encrypted bootstrap Secrets/);
  });
});
