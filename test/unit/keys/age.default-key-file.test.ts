import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sopsAgeKeyFile } from '../../../src/keys/age.ts';

// sops reads sops/age/keys.txt in os.UserConfigDir(), except that on macOS it prefers
// $XDG_CONFIG_HOME (getsops/sops age/keysource.go, getUserConfigDir).
void describe('sops default age key file, per platform', () => {
  void it('Linux: $XDG_CONFIG_HOME when set, else ~/.config', () => {
    assert.equal(sopsAgeKeyFile('linux', { XDG_CONFIG_HOME: '/xdg' }, '/home/me'), '/xdg/sops/age/keys.txt');
    assert.equal(sopsAgeKeyFile('linux', {}, '/home/me'), '/home/me/.config/sops/age/keys.txt');
    assert.equal(sopsAgeKeyFile('linux', { XDG_CONFIG_HOME: '' }, '/home/me'), '/home/me/.config/sops/age/keys.txt', 'empty is unset');
    assert.equal(sopsAgeKeyFile('freebsd', {}, '/home/me'), '/home/me/.config/sops/age/keys.txt', 'every other Unix alike');
  });

  void it('Linux: none when Go refuses the folder (relative $XDG_CONFIG_HOME, no home)', () => {
    assert.equal(sopsAgeKeyFile('linux', { XDG_CONFIG_HOME: 'rel/config' }, '/home/me'), undefined);
    assert.equal(sopsAgeKeyFile('linux', {}, ''), undefined);
  });

  void it('macOS: ~/Library/Application Support unless $XDG_CONFIG_HOME is set', () => {
    assert.equal(sopsAgeKeyFile('darwin', {}, '/Users/me'), '/Users/me/Library/Application Support/sops/age/keys.txt');
    assert.equal(sopsAgeKeyFile('darwin', { XDG_CONFIG_HOME: '/Users/me/.config' }, '/Users/me'), '/Users/me/.config/sops/age/keys.txt');
    assert.equal(sopsAgeKeyFile('darwin', { XDG_CONFIG_HOME: '' }, '/Users/me'), '/Users/me/Library/Application Support/sops/age/keys.txt', 'empty is unset');
  });

  void it('Windows: %AppData% (any case), never $XDG_CONFIG_HOME; none without it', () => {
    const appData = 'C:\\Users\\me\\AppData\\Roaming';
    assert.equal(sopsAgeKeyFile('win32', { APPDATA: appData }, 'C:\\Users\\me'), `${appData}\\sops\\age\\keys.txt`);
    assert.equal(sopsAgeKeyFile('win32', { AppData: appData, XDG_CONFIG_HOME: 'C:\\xdg' }, 'C:\\Users\\me'), `${appData}\\sops\\age\\keys.txt`);
    assert.equal(sopsAgeKeyFile('win32', { XDG_CONFIG_HOME: 'C:\\xdg' }, 'C:\\Users\\me'), undefined);
  });
});
