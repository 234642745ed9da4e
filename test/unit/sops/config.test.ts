import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { findConfig, matchRule, parseConfig, rulePath } from '../../../src/sops/config.ts';
import { stanzaName } from '../../../src/sops/metadata.ts';
import { vectorsDir } from './helpers.ts';

/** `.sops.yaml` as sops reads it: found walking up, first match, paths relative to its folder. */

const tmp = mkdtempSync(join(tmpdir(), 'fluxstrap-config-'));
void after(() => rmSync(tmp, { recursive: true, force: true }));

void describe('.sops.yaml', () => {
  void it('reads the kustomize-controller test config: anchors, first match, key_groups fallback, store indents', () => {
    const file = join(tmp, 'flux', '.sops.yaml');
    const config = parseConfig(readFileSync(join(vectorsDir, 'flux-testdata.sops.yaml'), 'utf8'), file);
    assert.deepEqual(config.indent, { yaml: 2, json: 2 });
    const rule = (p: string): string => {
      const r = matchRule(config, join(tmp, 'flux', p), tmp);
      return `${r?.pathRegex ?? '(fallback)'} ${r?.keyGroups.map((g) => g.map((s) => `${s.type}:${stanzaName(s).slice(0, 8)}`).join('+')).join(' | ') ?? ''} ${JSON.stringify(r?.rules)}`;
    };
    assert.equal(rule('algorithms/pgp.yaml'), '(inside|pgp)\\.yaml$ pgp:35C1A64C {"encryptedRegex":"^(data|stringData)$"}');
    assert.equal(rule('secret.json.yaml'), 'json\\.yaml$ age:age1l44x {"encryptedRegex":".*"}');
    assert.equal(rule('x/age.yaml'), '\\.yaml$ age:age1l44x {"encryptedRegex":"^(data|stringData)$"}');
    assert.equal(rule('file.bin'), '(fallback) age:age1l44x | pgp:35C1A64C {}');
  });

  void it('reads sops functional-test rules: two PGP groups, empty groups', () => {
    const config = parseConfig(readFileSync(join(vectorsDir, 'sops-functional-tests.sops.yaml'), 'utf8'), join(tmp, '.sops.yaml'));
    const groups = matchRule(config, join(tmp, 'test_roundtrip_keygroups.yaml'), tmp)?.keyGroups;
    assert.deepEqual(
      groups?.map((g) => g.map(stanzaName)),
      [['FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4'], ['D7229043384BCC60326C6FB9D8720D957C3D3074']],
    );
    assert.deepEqual(matchRule(config, join(tmp, 'test_zero_keygroups.yaml'), tmp)?.keyGroups, []);
  });

  void it('matches paths relative to the config folder, unanchored, and outside it by absolute path', () => {
    const config = parseConfig(
      'creation_rules:\n  - path_regex: ^clusters/prod/\n    age: age1a\n  - path_regex: secret\n    age: age1b\n',
      join(tmp, 'repo', '.sops.yaml'),
    );
    assert.equal(rulePath(config, 'clusters/prod/x.yaml', join(tmp, 'repo')), 'clusters/prod/x.yaml');
    assert.equal(matchRule(config, 'clusters/prod/x.yaml', join(tmp, 'repo'))?.pathRegex, '^clusters/prod/');
    assert.equal(matchRule(config, 'prod/x.yaml', join(tmp, 'repo', 'clusters'))?.pathRegex, '^clusters/prod/');
    assert.equal(matchRule(config, join(tmp, 'elsewhere', 'my-secret.yaml'), tmp)?.pathRegex, 'secret');
    assert.equal(matchRule(config, join(tmp, 'elsewhere', 'other.yaml'), tmp), undefined);
    // Placeholder recipients are not age keys: the rules still match, and encrypting with one is refused.
    assert.deepEqual(
      config.creationRules.map((r) => r.invalidRecipient),
      [
        { type: 'age', id: 'age1a', line: 3 },
        { type: 'age', id: 'age1b', line: 5 },
      ],
    );
  });

  void it('is found by walking up from the working folder; .sops.yml is not used', async () => {
    mkdirSync(join(tmp, 'walk', 'a', 'b'), { recursive: true });
    writeFileSync(join(tmp, 'walk', '.sops.yaml'), 'creation_rules: []\n');
    writeFileSync(join(tmp, 'walk', 'a', '.sops.yml'), 'creation_rules: []\n');
    assert.equal(await findConfig(join(tmp, 'walk', 'a', 'b'), {}), join(tmp, 'walk', '.sops.yaml'));
    assert.equal(await findConfig(join(tmp, 'walk', 'a'), { SOPS_CONFIG: 'x.yaml' }), join(tmp, 'walk', 'a', 'x.yaml'));
  });

  void it('errors name the file and line', () => {
    assert.throws(
      () => parseConfig('creation_rules:\n  - path_regex: "("\n', 'c.yaml'),
      (e: Error & { code?: string; location?: { line?: number } }) => e.code === 'E_CONFIG' && e.location?.line === 2,
    );
    assert.throws(
      () => parseConfig('creation_rules:\n  - age: a\n  - age: [b\n', 'c.yaml'),
      (e: Error & { location?: { file?: string } }) => e.location?.file === 'c.yaml',
    );
  });
});
