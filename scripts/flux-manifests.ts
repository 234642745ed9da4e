// Regenerates manifests/flux/<version>/: the per-component bundles, rbac.yaml and policies.yaml
// that Flux publishes as its release's manifests.tar.gz (flux2 manifests/scripts/bundle.sh), built
// offline from the flux2 module and each controller's own config/ from the Go module proxy, with
// the real kustomize (kubectl kustomize from the test cluster's cache). fluxstrap's `init` turns
// these into gotk-components.yaml natively (src/flux/install.ts), as `flux install --export` does.
//
//   node scripts/flux-manifests.ts [--check]    (--check: fail if the shipped files differ)
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { binaryPath, component, FLUX_VERSION } from '../test/cluster/components.ts';
import { downloadModule } from '../test/cluster/go.ts';

export const FLUX2_MODULE = 'github.com/fluxcd/flux2/v2';
export const shippedDir = (version: string) => fileURLToPath(new URL(`../manifests/flux/${version}/`, import.meta.url));

export interface ManifestsProvenance {
  flux: { module: string; version: string; sum: string };
  components: { name: string; module: string; version: string; sum: string }[];
  /** Components flux2 bundles whose module the Go module proxy does not serve. */
  unavailable: { name: string; module: string; version: string; error: string }[];
  kustomize: string;
}

/** The controller each flux2 base pins, read from its release-asset URL. */
export function pinnedControllers(manifestsDir: string): { name: string; version: string }[] {
  return readdirSync(join(manifestsDir, 'bases'))
    .sort()
    .map((name) => {
      const k = readFileSync(join(manifestsDir, 'bases', name, 'kustomization.yaml'), 'utf8');
      const m = new RegExp(`https://github\\.com/fluxcd/${name}/releases/download/(v[^/]+)/${name}\\.crds\\.yaml`).exec(k);
      if (!m?.[1]) throw new Error(`flux2 manifests/bases/${name}/kustomization.yaml names no ${name} release`);
      return { name, version: m[1] };
    });
}

/** Build the bundles into `out`; components whose module cannot be downloaded are left out and listed. */
export async function bundle(out: string): Promise<ManifestsProvenance> {
  const kubectl = binaryPath(component('kubernetes'), 'kubectl');
  if (!existsSync(kubectl)) throw new Error(`${kubectl} is missing: run npm run cluster:build first`);
  const flux2 = await downloadModule(FLUX2_MODULE, FLUX_VERSION);
  const work = mkdtempSync(join(tmpdir(), 'fluxstrap-flux-manifests-'));
  try {
    const manifests = join(work, 'manifests');
    cpSync(join(flux2.Dir, 'manifests'), manifests, { recursive: true });
    await execa('chmod', ['-R', 'u+w', work]);
    const provenance: ManifestsProvenance = {
      flux: { module: FLUX2_MODULE, version: FLUX_VERSION, sum: flux2.Sum },
      components: [],
      unavailable: [],
      kustomize: (await execa(kubectl, ['version', '--client', '-o', 'json'])).stdout.match(/"kustomizeVersion":\s*"([^"]+)"/)?.[1] ?? 'unknown',
    };
    rmSync(out, { recursive: true, force: true });
    mkdirSync(out, { recursive: true });
    const kustomize = async (dir: string) => (await execa(kubectl, ['kustomize', dir])).stdout + '\n';
    for (const { name, version } of pinnedControllers(manifests)) {
      const module = `github.com/fluxcd/${name}`;
      const mod = await downloadModule(module, version).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));
      if (mod instanceof Error) {
        provenance.unavailable.push({ name, module, version, error: mod.message.replace(/\s+/g, ' ').slice(0, 300) });
        continue;
      }
      const base = join(manifests, 'bases', name);
      const upstream = join(work, 'upstream', name);
      cpSync(join(mod.Dir, 'config', 'crd'), join(upstream, 'crd'), { recursive: true });
      cpSync(join(mod.Dir, 'config', 'manager'), join(upstream, 'manager'), { recursive: true });
      await execa('chmod', ['-R', 'u+w', upstream]);
      const prefix = `https://github.com/fluxcd/${name}/releases/download/${version}/${name}`;
      const k = readFileSync(join(base, 'kustomization.yaml'), 'utf8');
      writeFileSync(
        join(base, 'kustomization.yaml'),
        k.replace(`${prefix}.crds.yaml`, `../../../upstream/${name}/crd`).replace(`${prefix}.deployment.yaml`, `../../../upstream/${name}/manager`),
      );
      writeFileSync(join(out, `${name}.yaml`), await kustomize(base));
      provenance.components.push({ name, module, version, sum: mod.Sum });
    }
    writeFileSync(join(out, 'rbac.yaml'), await kustomize(join(manifests, 'rbac')));
    writeFileSync(join(out, 'policies.yaml'), await kustomize(join(manifests, 'policies')));
    writeFileSync(join(out, 'provenance.json'), `${JSON.stringify(provenance, null, 2)}\n`);
    return provenance;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const check = process.argv.includes('--check');
  const target = shippedDir(FLUX_VERSION);
  const out = check ? mkdtempSync(join(tmpdir(), 'fluxstrap-flux-manifests-check-')) : target;
  const p = await bundle(out);
  if (check) {
    const differ = readdirSync(out).filter((f) => !existsSync(join(target, f)) || readFileSync(join(out, f), 'utf8') !== readFileSync(join(target, f), 'utf8'));
    rmSync(out, { recursive: true, force: true });
    if (differ.length > 0) {
      console.error(`manifests/flux/${FLUX_VERSION} differs from a fresh generation: ${differ.join(', ')} (run node scripts/flux-manifests.ts)`);
      process.exit(1);
    }
  }
  console.log(`flux ${FLUX_VERSION}: ${p.components.map((c) => `${c.name} ${c.version}`).join(', ')}`);
  for (const u of p.unavailable) console.log(`not served by the Go module proxy: ${u.name} ${u.version} (${u.error})`);
}
