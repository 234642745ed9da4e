// The upstream programs the test cluster is made of, and where their builds live.
// Versions are pinned to what the Go module proxy serves (checked with `go list -m -versions`).
// Flux v2.7.5's source-controller v1.7.4 is not served, so the controllers follow Flux v2.9.5,
// whose manifests/bases pin source-controller v1.9.5, kustomize-controller v1.9.5,
// helm-controller v1.6.4 and notification-controller v1.9.4 (not served: v1.9.3 is built).
import { homedir } from 'node:os';
import { join } from 'node:path';

export const FLUX_VERSION = 'v2.9.5';
export const KUBERNETES_VERSION = 'v1.36.3';

export type ComponentName = 'kubernetes' | 'etcd' | 'sops' | 'flux' | 'local-kms' | 'vault' | 'gitea' | ControllerName;

/** Flux's default components, as `flux install` installs them. */
export const DEFAULT_CONTROLLERS = ['source-controller', 'kustomize-controller', 'helm-controller', 'notification-controller'] as const;
export type ControllerName = (typeof DEFAULT_CONTROLLERS)[number];

export interface Component {
  readonly name: ComponentName;
  readonly module: string;
  readonly version: string;
  /** Binary name → Go package path. */
  readonly binaries: Readonly<Record<string, string>>;
  /**
   * `wrapper`: a generated main module requires the upstream one, because upstream go.mod files
   * carry directory replaces that `go install pkg@version` refuses.
   * `install`: plain `go install pkg@version`.
   * `copy`: a writable copy of the module, for code that embeds files missing from the module zip
   * or whose go.mod names another module path than the one the proxy serves it under.
   */
  readonly method: 'wrapper' | 'install' | 'copy';
  readonly ldflags: readonly string[];
  /**
   * Dependencies whose required version the Go module proxy refuses ("This module version is
   * not available"), replaced by a served version of the same minor release. The checksum
   * database does not know these versions either, so they are exempted from it (GONOSUMDB).
   */
  readonly substitutes?: readonly { module: string; required: string; served: string }[];
  /**
   * The version flux2 FLUX_VERSION's manifests/bases name, when the proxy refuses it ("This
   * module version is not available") and `version` is a served patch release of the same
   * minor instead. Not part of the build recipe: it names what is missing, not what is built.
   */
  readonly pairedVersion?: string;
  /** Built only on request (`--with-flux-cli`, `--with-local-kms`, `--with-vault`, `--with-gitea`). */
  readonly optional: boolean;
}

const k8sMinor = KUBERNETES_VERSION.split('.')[1] ?? '';
const componentBaseVersion = 'k8s.io/component-base/version';
const clientGoVersion = 'k8s.io/client-go/pkg/version';

export const COMPONENTS: readonly Component[] = [
  {
    name: 'kubernetes',
    module: 'k8s.io/kubernetes',
    version: KUBERNETES_VERSION,
    // One `go build` for both: they share most compiled packages.
    binaries: {
      'kube-apiserver': 'k8s.io/kubernetes/cmd/kube-apiserver',
      kubectl: 'k8s.io/kubernetes/cmd/kubectl',
    },
    method: 'wrapper',
    // Without these /version reports v0.0.0-master, which `flux check --pre` cannot parse.
    ldflags: [componentBaseVersion, clientGoVersion].flatMap((p) => [
      `-X ${p}.gitVersion=${KUBERNETES_VERSION}`,
      `-X ${p}.gitMajor=1`,
      `-X ${p}.gitMinor=${k8sMinor}`,
      `-X ${p}.gitTreeState=clean`,
    ]),
    optional: false,
  },
  {
    name: 'etcd',
    module: 'go.etcd.io/etcd/server/v3',
    version: 'v3.6.16',
    binaries: { etcd: 'go.etcd.io/etcd/server/v3' },
    method: 'wrapper',
    ldflags: [],
    optional: false,
  },
  {
    name: 'source-controller',
    module: 'github.com/fluxcd/source-controller',
    version: 'v1.9.5',
    binaries: { 'source-controller': 'github.com/fluxcd/source-controller' },
    method: 'wrapper',
    ldflags: [],
    substitutes: [{ module: 'github.com/fluxcd/pkg/artifact', required: 'v0.18.3', served: 'v0.18.0' }],
    optional: false,
  },
  {
    name: 'kustomize-controller',
    module: 'github.com/fluxcd/kustomize-controller',
    version: 'v1.9.5',
    binaries: { 'kustomize-controller': 'github.com/fluxcd/kustomize-controller' },
    method: 'wrapper',
    ldflags: [],
    optional: false,
  },
  {
    name: 'helm-controller',
    module: 'github.com/fluxcd/helm-controller',
    version: 'v1.6.4',
    binaries: { 'helm-controller': 'github.com/fluxcd/helm-controller' },
    method: 'wrapper',
    ldflags: [],
    optional: false,
  },
  {
    name: 'notification-controller',
    module: 'github.com/fluxcd/notification-controller',
    version: 'v1.9.3',
    binaries: { 'notification-controller': 'github.com/fluxcd/notification-controller' },
    method: 'wrapper',
    ldflags: [],
    pairedVersion: 'v1.9.4',
    optional: false,
  },
  {
    name: 'sops',
    module: 'github.com/getsops/sops/v3',
    version: 'v3.13.3',
    binaries: { sops: 'github.com/getsops/sops/v3/cmd/sops' },
    method: 'install',
    ldflags: [],
    optional: false,
  },
  {
    name: 'flux',
    module: 'github.com/fluxcd/flux2/v2',
    version: FLUX_VERSION,
    binaries: { flux: './cmd/flux' },
    method: 'copy',
    ldflags: [`-X main.VERSION=${FLUX_VERSION.slice(1)}`],
    optional: true,
  },
  {
    // An AWS KMS stand-in for the sops `kms` tests (fluxstrap, sops and kustomize-controller reach
    // it through AWS_ENDPOINT_URL_KMS). Not tagged: the proxy serves this commit's pseudo-version.
    name: 'local-kms',
    module: 'github.com/nsmithuk/local-kms',
    version: 'v0.0.0-20260228092603-2a5e92d09ab6',
    binaries: { 'local-kms': 'github.com/nsmithuk/local-kms' },
    method: 'install',
    ldflags: [],
    optional: true,
  },
  {
    // A Vault dev server with the transit engine for the hc_vault tests (the proxy refuses every
    // OpenBao module). `go install` is refused for upstream's directory replaces (./api, ./sdk),
    // so a wrapper module builds it against the published api and sdk its go.mod requires.
    // v1.21.0, not a later patch: its tree's sdk is the published v0.20.0, while the 1.21.x
    // patches carry backports that match no published sdk (v1.21.4: ActivationFunc as in v0.20,
    // RestorePolicy as in v0.24) and the proxy serves no pseudo-version of the tag's commit.
    name: 'vault',
    module: 'github.com/hashicorp/vault',
    version: 'v1.21.0',
    binaries: { vault: 'github.com/hashicorp/vault' },
    method: 'wrapper',
    ldflags: [],
    optional: true,
  },
  {
    // A real forge for the second deploy-key provider (Gitea's REST API). v1.27.3: SQLite in pure
    // Go by default (v1.26 needs cgo and -tags sqlite); its go.mod calls the module gitea.dev,
    // which no wrapper can require by its proxy path, so it builds in a copy. The proxy lists no
    // Forgejo release (`go list -m -versions codeberg.org/forgejo/forgejo`).
    name: 'gitea',
    module: 'code.gitea.io/gitea',
    version: 'v1.27.3',
    binaries: { gitea: '.' },
    method: 'copy',
    ldflags: ['-X main.Version=1.27.3'],
    optional: true,
  },
];

export function component(name: ComponentName): Component {
  const found = COMPONENTS.find((c) => c.name === name);
  if (!found) throw new Error(`unknown component ${name}`);
  return found;
}

export function cacheDir(): string {
  return process.env.FLUXSTRAP_TEST_CACHE ?? join(homedir(), '.cache', 'fluxstrap-test');
}

export function componentDir(c: Component): string {
  return join(cacheDir(), `${c.name}-${c.version}`);
}

/** Where a wrapper module or a module copy is built; Gitea also reads its locales and templates from there at run time. */
export function sourceDir(c: Component): string {
  return join(cacheDir(), 'src', `${c.name}-${c.version}`);
}

export function binaryPath(c: Component, binary: string): string {
  return join(componentDir(c), 'bin', binary);
}

export function stampPath(c: Component): string {
  return join(componentDir(c), 'stamp.json');
}

/**
 * Directory of the generated gotk-components.yaml (Flux's default components) and its
 * provenance. Not `flux-manifests-<version>`, where harnesses of before the default set keep a
 * file with only source- and kustomize-controller: worktrees sharing the cache keep theirs.
 */
export function fluxManifestsDir(): string {
  return join(cacheDir(), `flux-manifests-${FLUX_VERSION}-default`);
}
