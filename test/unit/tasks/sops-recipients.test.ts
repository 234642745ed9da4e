import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { FluxstrapError } from '../../../src/core/errors.ts';
import { ruleRecipients, sopsRecipientsKind } from '../../../src/tasks/sops-recipients.ts';
import { planFile } from '../../helpers/file-tasks.ts';

const OLD = 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p';
const NEW = 'age1lggyhqrw2nlhcxprm67z43rta597azn8gknawjehu9d9dl0jq3yqqvfafg';
const STAGING = 'age1cy0su9fwf3gf9mw868g5yut09p6nytfmmnktexz2ya5uqg9vl9sss4euqm';

const SOPS = `# keys per cluster
creation_rules:
  - path_regex: ^clusters/staging/.*\\.ya?ml$
    age: ${STAGING}
  # production: rotated yearly
  - path_regex: ^clusters/prod/.*\\.ya?ml$
    encrypted_regex: ^(data|stringData)$
    age: ${OLD} # the 2025 key
`;

const plan = (params: Record<string, unknown>, text: string | undefined) => planFile(sopsRecipientsKind, { clusterPath: 'clusters/prod', ...params }, text);
const JOIN = [{ recipient: NEW, besides: OLD }];

function configError(fn: () => unknown, message: RegExp, line?: number): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof FluxstrapError);
    assert.equal(e.code, 'E_CONFIG');
    assert.match(e.message, message);
    assert.equal(e.location?.file, '.sops.yaml');
    if (line !== undefined) assert.equal(e.location.line, line);
    return true;
  });
}

void describe('sops-recipients plan', () => {
  void it("adds the new recipient next to the old one in the cluster's rule only, keeping comments", () => {
    const { changes, after } = plan({ add: JOIN }, SOPS);
    assert.equal(changes[0]?.action, 'update');
    assert.equal(changes[0]?.summary, `add recipient ${NEW} in the creation rule for clusters/prod`);
    assert.deepEqual(ruleRecipients(after ?? '', '.sops.yaml', 'clusters/prod'), [OLD, NEW]);
    assert.deepEqual(ruleRecipients(after ?? '', '.sops.yaml', 'clusters/staging'), [STAGING]);
    for (const line of SOPS.split('\n').filter((l) => !l.includes(OLD))) assert.ok(after?.includes(line), `kept: ${line}`);
    assert.match(after ?? '', /# the 2025 key/);
  });

  void it('removes the old recipient, and a recipient already in place is nothing to do', () => {
    const both = plan({ add: JOIN }, SOPS).after ?? '';
    const { changes, after } = plan({ remove: [OLD] }, both);
    assert.equal(changes[0]?.summary, `remove recipient ${OLD} in the creation rule for clusters/prod`);
    assert.deepEqual(ruleRecipients(after ?? '', '.sops.yaml', 'clusters/prod'), [NEW]);
    assert.deepEqual(plan({ add: JOIN }, both).changes, []);
    assert.deepEqual(plan({ remove: [STAGING] }, SOPS).changes, []);
  });

  void it('keeps recipients written as a YAML list a list', () => {
    const text = `creation_rules:\n  - path_regex: ^clusters/prod/.*\\.ya?ml$\n    age:\n      - ${OLD}\n`;
    const { after } = plan({ add: JOIN }, text);
    assert.equal(after, `creation_rules:\n  - path_regex: ^clusters/prod/.*\\.ya?ml$\n    age:\n      - ${OLD}\n      - ${NEW}\n`);
  });

  void it('refuses, naming the file, without .sops.yaml, without the rule, or when no key would be left', () => {
    configError(() => plan({ add: JOIN }, undefined), /no \.sops\.yaml/);
    configError(() => plan({ clusterPath: 'clusters/dev', add: JOIN }, SOPS), /no creation rule for clusters\/dev/);
    configError(() => plan({ remove: [OLD] }, SOPS), /without a key/, 6);
  });
});

const TEAM = 'age1tq9hgn0w4zxm8c8v3ap7yfexzr6h0xs5dzpf0cgrhvuzkx5u7w0qzlyjpn';
const FP = 'FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4';
/** Shamir: the cluster's key and a PGP key in one group, the team's (written once, by anchor) in the other. */
const GROUPS = `keys:
  - &team ${TEAM}
creation_rules:
  - path_regex: ^clusters/staging/.*\\.ya?ml$
    age: ${STAGING}
  - path_regex: ^clusters/prod/.*\\.ya?ml$
    shamir_threshold: 2
    key_groups:
      # the cluster and the vault
      - age:
          - ${OLD} # the 2025 key
        pgp:
          - ${FP}
      # the team, for disaster recovery
      - age:
          - *team
`;

void describe('sops-recipients plan with key groups (Shamir)', () => {
  const groupsOf = (text: string) =>
    (parse(text) as { creation_rules: { path_regex: string; key_groups?: { age?: string[]; pgp?: string[] }[] }[] }).creation_rules.find((r) =>
      r.path_regex.startsWith('^clusters/prod/'),
    )?.key_groups;

  void it("adds the new recipient to the old one's group only, in place, keeping comments and the anchor", () => {
    const { changes, after } = plan({ add: JOIN }, GROUPS);
    assert.equal(changes[0]?.summary, `add recipient ${NEW} in the creation rule for clusters/prod`);
    assert.deepEqual(groupsOf(after ?? ''), [{ age: [OLD, NEW], pgp: [FP] }, { age: [TEAM] }]);
    assert.equal(after, GROUPS.replace(`# the 2025 key\n`, `# the 2025 key\n          - ${NEW}\n`));
  });

  void it('removes the old recipient from its group, keeping the other keys there', () => {
    const both = plan({ add: JOIN }, GROUPS).after ?? '';
    const { changes, after } = plan({ add: JOIN, remove: [OLD] }, both);
    assert.equal(changes[0]?.summary, `remove recipient ${OLD} in the creation rule for clusters/prod`);
    assert.deepEqual(groupsOf(after ?? ''), [{ age: [NEW], pgp: [FP] }, { age: [TEAM] }]);
    assert.deepEqual(ruleRecipients(after ?? '', '.sops.yaml', 'clusters/prod'), [NEW, TEAM]);
    assert.match(after ?? '', /# the cluster and the vault\n/);
    assert.match(after ?? '', /# the team, for disaster recovery\n {6}- age:\n {10}- \*team\n/);
  });

  void it('a recipient named by alias joins and leaves like any other', () => {
    const { after } = plan({ add: [{ recipient: NEW, besides: TEAM }] }, GROUPS);
    assert.deepEqual(groupsOf(after ?? ''), [{ age: [OLD], pgp: [FP] }, { age: [TEAM, NEW] }]);
    assert.deepEqual(groupsOf(plan({ remove: [TEAM] }, after ?? '').after ?? ''), [{ age: [OLD], pgp: [FP] }, { age: [NEW] }]);
  });

  void it('refuses to leave a group without a key, or to edit a list other rules share through an anchor', () => {
    configError(() => plan({ remove: [TEAM] }, GROUPS), /removing .* would leave key group 2 of the rule for clusters\/prod without a key/, 15);
    const shared = `x-keys: &ours\n  - ${OLD}\ncreation_rules:\n  - path_regex: ^clusters/prod/.*\\.ya?ml$\n    key_groups:\n      - age: *ours\n      - age:\n          - ${TEAM}\n  - path_regex: ^clusters/dev/\n    age: *ours\n`;
    assert.deepEqual(groupsOf(plan({ add: JOIN }, shared).after ?? '')?.[0], { age: [OLD, NEW] }, "an alias is replaced by the rule's own list");
    const anchored = `creation_rules:\n  - path_regex: ^clusters/prod/.*\\.ya?ml$\n    key_groups:\n      - age: &ours\n          - ${OLD}\n      - age:\n          - ${TEAM}\n  - path_regex: ^clusters/dev/\n    age: *ours\n`;
    configError(() => plan({ add: JOIN }, anchored), /shared through a YAML anchor/, 5);
  });
});
