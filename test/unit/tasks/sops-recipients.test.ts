import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
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
    const { changes, after } = plan({ add: [NEW] }, SOPS);
    assert.equal(changes[0]?.action, 'update');
    assert.equal(changes[0]?.summary, `add recipient ${NEW} in the creation rule for clusters/prod`);
    assert.deepEqual(ruleRecipients(after ?? '', '.sops.yaml', 'clusters/prod'), [OLD, NEW]);
    assert.deepEqual(ruleRecipients(after ?? '', '.sops.yaml', 'clusters/staging'), [STAGING]);
    for (const line of SOPS.split('\n').filter((l) => !l.includes(OLD))) assert.ok(after?.includes(line), `kept: ${line}`);
    assert.match(after ?? '', /# the 2025 key/);
  });

  void it('removes the old recipient, and a recipient already in place is nothing to do', () => {
    const both = plan({ add: [NEW] }, SOPS).after ?? '';
    const { changes, after } = plan({ remove: [OLD] }, both);
    assert.equal(changes[0]?.summary, `remove recipient ${OLD} in the creation rule for clusters/prod`);
    assert.deepEqual(ruleRecipients(after ?? '', '.sops.yaml', 'clusters/prod'), [NEW]);
    assert.deepEqual(plan({ add: [NEW] }, both).changes, []);
    assert.deepEqual(plan({ remove: [STAGING] }, SOPS).changes, []);
  });

  void it('keeps recipients written as a YAML list a list', () => {
    const text = `creation_rules:\n  - path_regex: ^clusters/prod/.*\\.ya?ml$\n    age:\n      - ${OLD}\n`;
    const { after } = plan({ add: [NEW] }, text);
    assert.equal(after, `creation_rules:\n  - path_regex: ^clusters/prod/.*\\.ya?ml$\n    age:\n      - ${OLD}\n      - ${NEW}\n`);
  });

  void it('refuses, naming the file, without .sops.yaml, without the rule, with key groups, or when no key would be left', () => {
    configError(() => plan({ add: [NEW] }, undefined), /no \.sops\.yaml/);
    configError(() => plan({ clusterPath: 'clusters/dev', add: [NEW] }, SOPS), /no creation rule for clusters\/dev/);
    const groups = `creation_rules:\n  - path_regex: ^clusters/prod/.*\\.ya?ml$\n    key_groups:\n      - age:\n          - ${OLD}\n`;
    configError(() => plan({ add: [NEW] }, groups), /uses key_groups/, 2);
    configError(() => plan({ remove: [OLD] }, SOPS), /without a key/, 6);
  });
});
