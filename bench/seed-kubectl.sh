#!/usr/bin/env bash
# The seed homelab's Ansible bootstrap sequence as a plain kubectl script, made idempotent the
# usual way (every object re-applied on every run instead of "skip if the namespace exists"), so
# that a re-run does the same work fluxstrap's does. The benchmark's baseline; not used by fluxstrap.
# Env: KUBECONFIG, FLUX_DIR (the cluster's flux-system folder), GIT_USER, GIT_PASSWORD_FILE,
# AGE_KEY_FILE, FLUX (path of the flux CLI, optional). Prints "step <name> <ms>" lines on stderr.
set -euo pipefail
kubectl=${KUBECTL:-kubectl}

t() { date +%s%N; }
step() { local name=$1; shift; local s; s=$(t); "$@" >/dev/null; echo "step $name $(( ($(t) - s) / 1000000 ))" >&2; }

ns() { $kubectl create namespace flux-system --dry-run=client -o yaml | $kubectl apply -f -; }
git_secret() {
  $kubectl create secret generic flux-system -n flux-system --from-literal=username="$GIT_USER" \
    --from-file=password="$GIT_PASSWORD_FILE" --dry-run=client -o yaml | $kubectl apply -f -
}
age_secret() {
  $kubectl create secret generic sops-age -n flux-system --from-file=age.agekey="$AGE_KEY_FILE" \
    --dry-run=client -o yaml | $kubectl apply -f -
}
components() {
  # Flux's CRDs are too large for client-side apply's last-applied annotation.
  $kubectl apply --server-side --force-conflicts -f "$FLUX_DIR/gotk-components.yaml"
  $kubectl wait --for=condition=established --timeout=120s crd -l app.kubernetes.io/part-of=flux
}
# The seed applied gotk-sync.yaml raw; with the decryption patch in kustomization.yaml the right
# way is the kustomize build of the folder.
sync() { $kubectl apply --server-side --force-conflicts -k "$FLUX_DIR"; }
# The seed waits for pods; the test cluster has no kubelet, so wait on the Deployments it mirrors.
wait_ready() { $kubectl wait --for=condition=available deployment -l app.kubernetes.io/part-of=flux -n flux-system --timeout=300s; }
reconcile() {
  if [ -n "${FLUX:-}" ]; then
    "$FLUX" reconcile source git flux-system
    "$FLUX" reconcile kustomization flux-system
  else
    local now; now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    $kubectl annotate --overwrite -n flux-system gitrepository/flux-system reconcile.fluxcd.io/requestedAt="$now"
    $kubectl wait --for=condition=ready --timeout=300s -n flux-system gitrepository/flux-system
    $kubectl annotate --overwrite -n flux-system kustomization/flux-system reconcile.fluxcd.io/requestedAt="$now"
    $kubectl wait --for=condition=ready --timeout=300s -n flux-system kustomization/flux-system
  fi
}

step namespace ns
step git-credentials git_secret
step sops-age age_secret
step flux-components components
step wait-controllers wait_ready
step flux-sync sync
step reconcile reconcile
