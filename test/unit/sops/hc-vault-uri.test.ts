import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../../src/sops/config.ts';
import { vaultAllowed } from '../../../src/sops/hc-vault.ts';
import { parseVaultUri, VaultUriError } from '../../../src/sops/hc-vault-uri.ts';
import { stanzaField, stanzaName } from '../../../src/sops/metadata.ts';

/** Transit key URIs read as sops' NewMasterKeyFromURI reads them (hcvault/keysource.go). */

void describe('parseVaultUri', () => {
  const cases: [string, string, string, string][] = [
    ['https://vault.example.com:8200/v1/transit/keys/sops', 'https://vault.example.com:8200', 'transit', 'sops'],
    // The address is kept as written: sops stores and compares it byte for byte.
    ['https://Vault.Example.com:443/v1/transit/keys/sops', 'https://Vault.Example.com:443', 'transit', 'sops'],
    ['http://127.0.0.1:8200/v1/sops/transit/keys/flux', 'http://127.0.0.1:8200', 'sops/transit', 'flux'],
    ['http://127.0.0.1:8200/v1/transit/keys/flux/', 'http://127.0.0.1:8200', 'transit', 'flux'],
    // sops does not check the `keys` segment: the one before the name is dropped whatever it is.
    ['http://vault:8200/v2/transit/anything/k', 'http://vault:8200', 'transit', 'k'],
  ];
  for (const [uri, address, enginePath, keyName] of cases) {
    void it(uri, () => assert.deepEqual(parseVaultUri(uri), { address, enginePath, keyName }));
  }

  const bad: [string, RegExp][] = [
    ['vault.example.com:8200/v1/transit/keys/sops', /missing scheme/],
    ['https://vault.example.com/prefix/v1/transit/keys/sops', /path prefix/],
    ['https://vault.example.com/v1/transit/sops', /not \/v1\/<engine>\/keys\/<name>/],
    ['https://vault.example.com', /not an http\(s\) URL/],
    ['https://vault.example.com/v1/transit/keys/sops?x=1', /no query/],
    ['ftp://vault.example.com/v1/transit/keys/sops', /not an http\(s\) URL/],
    ['https://s.hvs.secret@vault.example.com/v1/transit/keys/sops', /user information/],
  ];
  for (const [uri, re] of bad) {
    void it(`refuses ${uri}`, () => {
      assert.throws(
        () => parseVaultUri(uri),
        (e: unknown) => e instanceof VaultUriError && re.test(e.message) && !e.message.includes('s.hvs.secret'),
      );
    });
  }
});

void describe('.sops.yaml hc_vault_transit_uri', () => {
  void it("a flat rule and a key group give sops' stanza fields and name", () => {
    const config = parseConfig(
      [
        'creation_rules:',
        '  - path_regex: flat/',
        '    hc_vault_transit_uri: http://127.0.0.1:8200/v1/transit/keys/a,http://127.0.0.1:8200/v1/transit/keys/b',
        '  - path_regex: groups/',
        '    key_groups:',
        '      - hc_vault:',
        '          - http://127.0.0.1:8200/v1/sops/keys/c',
        '',
      ].join('\n'),
      '/x/.sops.yaml',
    );
    const [flat, groups] = config.creationRules;
    assert.deepEqual(flat?.keyGroups[0]?.map(stanzaName), ['http://127.0.0.1:8200/v1/transit/keys/a', 'http://127.0.0.1:8200/v1/transit/keys/b']);
    const c = groups?.keyGroups[0]?.[0];
    assert.ok(c);
    assert.deepEqual([stanzaField(c, 'vault_address'), stanzaField(c, 'engine_path'), stanzaField(c, 'key_name')], ['http://127.0.0.1:8200', 'sops', 'c']);
    assert.deepEqual(c.origin, { file: '/x/.sops.yaml', line: 7 });
  });

  void it('a malformed URI is recorded on its rule with its line, not thrown: other rules stay usable', () => {
    const config = parseConfig(
      'creation_rules:\n  - path_regex: a/\n    age: age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\n  - path_regex: b/\n    hc_vault_transit_uri: https://vault/prefix/v1/transit/keys/x\n',
      '/x/.sops.yaml',
    );
    assert.equal(config.creationRules[0]?.invalidVaultUri, undefined);
    assert.deepEqual(config.creationRules[1]?.invalidVaultUri?.location, { file: '/x/.sops.yaml', line: 5 });
    assert.match(config.creationRules[1]?.invalidVaultUri?.reason ?? '', /path prefix/);
  });
});

void describe('SOPS_HC_VAULT_ALLOWLIST', () => {
  void it('all by default, none, or address prefixes compared with a trailing slash', () => {
    assert.equal(vaultAllowed('https://vault:8200', {}), true);
    assert.equal(vaultAllowed('https://vault:8200', { SOPS_HC_VAULT_ALLOWLIST: 'none' }), false);
    assert.equal(vaultAllowed('https://vault:8200', { SOPS_HC_VAULT_ALLOWLIST: 'https://other, https://vault:8200' }), true);
    // A prefix of the host name is not a prefix of the address.
    assert.equal(vaultAllowed('https://vault:82001', { SOPS_HC_VAULT_ALLOWLIST: 'https://vault:8200' }), false);
    assert.throws(() => vaultAllowed('https://vault', { SOPS_HC_VAULT_ALLOWLIST: 'https://a,,https://b' }), /empty entry/);
  });
});
