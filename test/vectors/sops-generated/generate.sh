#!/bin/sh
# Regenerates the vectors in this folder with a real sops (3.13.2): SOPS=/path/to/sops ./generate.sh
# Each NAME.enc.EXT is what sops encrypt wrote; NAME.enc.EXT.decrypted is what sops decrypt prints for it.
set -eu
cd "$(dirname "$0")"
SOPS=${SOPS:-sops}
A=$(sed -n 's/^# public key: //p' key-a.txt)
B=$(sed -n 's/^# public key: //p' key-b.txt)
C=$(sed -n 's/^# public key: //p' key-c.txt)
export SOPS_AGE_KEY_FILE="$PWD/keys.tmp"
cat key-a.txt key-b.txt key-c.txt > keys.tmp
chmod 600 keys.tmp
trap 'rm -f keys.tmp shamir.tmp.yaml rule.tmp.yaml' EXIT
enc() { # out in [--config FILE] flags...
  out=$1; in=$2; shift 2
  cfg=/dev/null
  if [ "${1:-}" = --config ]; then cfg=$2; shift 2; fi
  "$SOPS" --config "$cfg" encrypt "$@" --filename-override "$in" "plain/$in" > "$out"
  "$SOPS" --config "$cfg" decrypt "$out" > "$out.decrypted"
}
# sops has no flag for mac_only_encrypted: it comes from a creation rule.
printf 'creation_rules:\n  - age: %s\n    encrypted_regex: ^(data|stringData)$\n    mac_only_encrypted: true\n' "$A" > rule.tmp.yaml
enc secret.mac-only.enc.yaml secret.yaml --config rule.tmp.yaml
enc secret.unencrypted-regex.enc.yaml secret.yaml --age "$A" --unencrypted-regex '^(apiVersion|kind|metadata|type)$'
enc suffix.encrypted-suffix.enc.yaml suffix.yaml --age "$A" --encrypted-suffix _secret
for rule in encrypted_comment_regex unencrypted_comment_regex; do
  printf 'creation_rules:\n  - age: %s\n    %s: sops:enc\n' "$A" "$rule" > rule.tmp.yaml
  enc "comments.$(echo $rule | tr _ -).enc.yaml" comments.yaml --config rule.tmp.yaml
done
enc multidoc.enc.yaml multidoc.yaml --age "$A,$B"
enc types.enc.yaml types.yaml --age "$A"
enc app.enc.json app.json --age "$A"
enc app.enc.env app.env --age "$A"
enc app.enc.ini app.ini --age "$A"
enc blob.enc.bin blob.bin --age "$A"
# How sops lays out nested lists, maps and block scalars for each stores.yaml.indent.
for n in 2 3 4; do
  printf 'stores:\n  yaml:\n    indent: %s\ncreation_rules:\n  - age: %s\n' "$n" "$A" > rule.tmp.yaml
  enc "nested.indent-$n.enc.yaml" nested.yaml --config rule.tmp.yaml
done
printf 'creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n      - age: [%s]\n      - age: [%s]\n      - age: [%s]\n' "$A" "$B" "$C" > shamir.tmp.yaml
enc secret.shamir.enc.yaml secret.yaml --config shamir.tmp.yaml
