// What the real-layout cluster tests share: the CLI from source, git with the harness's
// credentials, and the small manifests a trimmed layout is rewritten with.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { gitEnv } from '../../src/adapters/git.ts';
import type { GitAuth } from '../../src/adapters/git.ts';
import { conditionOf } from '../../src/adapters/kube/readiness.ts';
import type { KubeAdapter } from '../../src/adapters/kube/port.ts';

export const ROOT = new URL('../../', import.meta.url).pathname;
const NODE = join(ROOT, 'node_modules/.bin/node');
const CLI = join(ROOT, 'src/cli.ts');

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function cli(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    // Only the keys a test names: none from this machine's SOPS settings.
    const { SOPS_AGE_KEY: _k, SOPS_AGE_KEY_FILE: _f, ...base } = process.env;
    const child = spawn(NODE, [CLI, ...args], {
      cwd: opts.cwd ?? ROOT,
      env: { ...base, CI: '1', NO_COLOR: '1', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

export async function git(args: string[], cwd: string, auth: GitAuth = { kind: 'none' }): Promise<void> {
  const { execa } = await import('execa');
  const res = await execa('git', args, {
    cwd,
    env: { ...gitEnv(auth), GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' },
    reject: false,
  });
  assert.equal(res.exitCode, 0, `git ${args.join(' ')}: ${res.stderr}`);
}

/** Commit everything and push it to `url` on the harness's Git server. */
export async function pushAll(dir: string, url: string, auth: GitAuth, message: string): Promise<void> {
  await git(['init', '--quiet', '--initial-branch=main'], dir);
  await git(['add', '-A'], dir);
  await git(['commit', '--quiet', '-m', message], dir);
  await git(['push', '--quiet', url, 'main'], dir, auth);
}

export const kustomization = (resources: string[]) => stringify({ apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', resources });
export const namespace = (name: string) => stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
export const secret = (ns: string, name: string, data: Record<string, string>) =>
  stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: ns }, type: 'Opaque', stringData: data });

export interface ReachedSecret {
  ns: string;
  name: string;
  key: string;
  value: string;
}

/** Each Flux Kustomization of flux-system becomes Ready, and each Secret holds its plaintext value. */
export async function assertConverged(kube: KubeAdapter, kustomizations: string[], secrets: ReachedSecret[]): Promise<void> {
  for (const ks of kustomizations) {
    const obj = await kube.waitFor(
      { apiVersion: 'kustomize.toolkit.fluxcd.io/v1', kind: 'Kustomization', namespace: 'flux-system', name: ks },
      (o) => ({ done: conditionOf(o, 'Ready')?.status === 'True', reason: conditionOf(o, 'Ready')?.message ?? 'not Ready' }),
      { timeoutMs: 180_000, what: 'Ready' },
    );
    assert.equal(conditionOf(obj, 'Ready')?.status, 'True');
  }
  for (const s of secrets) {
    const found = await kube.get({ apiVersion: 'v1', kind: 'Secret', namespace: s.ns, name: s.name });
    assert.ok(found, `Secret ${s.ns}/${s.name} exists`);
    assert.equal(Buffer.from((found.data as Record<string, string>)[s.key] ?? '', 'base64').toString(), s.value);
  }
}
