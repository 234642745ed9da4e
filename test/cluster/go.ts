// Running the Go toolchain for the harness build.
import { run } from './proc.ts';

export const goEnv: NodeJS.ProcessEnv = {
  ...process.env,
  // Never download a toolchain behind our back, and build static binaries.
  GOTOOLCHAIN: 'local',
  CGO_ENABLED: '0',
};

// -pgo=off: default.pgo files in some upstream main packages would make 2-core builds slower
// and less predictable.
export const commonBuildFlags = ['-trimpath', '-pgo=off'];

export interface ModuleInfo {
  Dir: string;
  GoMod: string;
  /** The module's go.sum hash (h1:…). */
  Sum: string;
}

export async function downloadModule(module: string, version: string): Promise<ModuleInfo> {
  const out = await run('go', ['mod', 'download', '-json', `${module}@${version}`], { env: goEnv }).catch((err: unknown) => {
    throw new Error(`downloading ${module}@${version}: ${(err as Error).message}`);
  });
  const info = JSON.parse(out) as Partial<ModuleInfo> & { Error?: string };
  if (info.Error !== undefined || info.Dir === undefined || info.GoMod === undefined) {
    throw new Error(`downloading ${module}@${version}: ${info.Error ?? 'no module directory'}`);
  }
  return { Dir: info.Dir, GoMod: info.GoMod, Sum: info.Sum ?? '' };
}
