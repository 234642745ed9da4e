import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { repoRoot, runCli } from '../helpers/cli.ts';

// The README is part of the interface: its examples must keep working as the code changes.
const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'fluxstrap-readme-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The first fenced block of `lang` after a heading. */
function blockAfter(heading: string, lang: string): string {
  const at = readme.indexOf(heading);
  assert.notEqual(at, -1, `README has "${heading}"`);
  const start = readme.indexOf('```' + lang + '\n', at);
  assert.notEqual(start, -1, `a ${lang} block follows "${heading}"`);
  const body = start + lang.length + 4;
  return readme.slice(body, readme.indexOf('```\n', body));
}

void describe('README examples', () => {
  void it('the fluxstrap.yaml example is valid and the playbook example validates against it', () => {
    writeFileSync(join(dir, 'fluxstrap.yaml'), blockAfter('#### fluxstrap.yaml', 'yaml'));
    writeFileSync(join(dir, 'playbook.yaml'), blockAfter('#### Playbooks', 'yaml'));
    const r = runCli(['run', 'playbook.yaml', '--list-tasks', '--cluster', 'prod', '--repo', dir], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Bootstrap Flux on prod$/m);
  });

  void it('every fluxstrap command shown in a shell example exists', () => {
    const commands = new Set<string>();
    for (const m of readme.matchAll(/```sh\n([\s\S]*?)```/g)) {
      for (const line of (m[1] ?? '').split('\n')) {
        const cmd = /(?:^|\s)(?:npx )?fluxstrap ((?:keys )?[a-z]+)/.exec(line.replace(/#.*$/, ''))?.[1];
        if (cmd) commands.add(cmd);
      }
    }
    assert.ok(commands.size >= 10, `found the commands: ${[...commands].join(', ')}`);
    for (const cmd of commands) {
      const r = runCli([...cmd.split(' '), '--help']);
      assert.equal(r.code, 0, `fluxstrap ${cmd} --help: ${r.stderr}`);
      assert.doesNotMatch(r.stdout, /^Usage: fluxstrap \[options\] \[command\]/, `fluxstrap ${cmd} is a real subcommand`);
    }
  });

  void it('every npm script shown in a shell example exists', () => {
    const { scripts } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    const shown = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((m) => [...(m[1] ?? '').matchAll(/npm run ([\w:-]+)/g)].map((r) => r[1] ?? ''));
    assert.ok(shown.length >= 3, `found the scripts: ${shown.join(', ')}`);
    for (const name of shown) assert.ok(name in scripts, `package.json has the script "${name}" that the README runs`);
  });
});
