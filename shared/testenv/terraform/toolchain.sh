#!/usr/bin/env bash
# Builds OpenTofu and the providers that terraform/ uses from the Go module
# proxy, into the cache, and writes the CLI configuration that installs the
# providers from a filesystem mirror there (never from a registry):
#
#   $RUNBOAT_CACHE_DIR/terraform/
#     bin/tofu-<version>                      the OpenTofu CLI
#     mirror/<host>/hashicorp/<type>/<version>/<os>_<arch>/terraform-provider-<type>_v<version>
#     tofurc                                  TF_CLI_CONFIG_FILE: the mirror, nothing else
#
# Each tool is built once per version and reused. Safe to interrupt and to
# run twice at once: a build goes to a temporary name, renamed at the end,
# and a lock makes a second run wait for the first (then it finds
# everything built).
#
#   toolchain.sh          build what is missing
#   toolchain.sh env      build what is missing, then print the exports
#                         (RUNBOAT_TOFU, TF_CLI_CONFIG_FILE)
#
# What the Go module proxy serves decides the versions. OpenTofu is a plain
# Go module. The kubernetes provider's release tags since v2 are not valid
# Go module versions for its path, and the proxy serves none of their
# commits: v1.13.4 is the newest it serves. That release predates
# Kubernetes 1.24, so two changes are applied to it
# (kubernetes-provider-v1.13.4.patch): a ServiceAccount no longer waits for
# the token Secret that older API servers made for it, and a Secret of type
# kubernetes.io/service-account-token waits for its token to be filled in.
# Its go.mod requires vbom.ml/util, which the proxy no longer serves and no
# package of the provider imports: an empty stand-in module takes its place.
# The AWS and random providers are not built: the proxy serves no version of
# them that OpenTofu can run (see terraform/README.md).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
export GOTOOLCHAIN=${GOTOOLCHAIN:-local} GOWORK=off GOFLAGS=-mod=mod
cache=${RUNBOAT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/runboat}
root=$cache/terraform

TOFU_VERSION=v1.12.6
KUBERNETES_VERSION=1.13.4

platform=$(go env GOOS)_$(go env GOARCH)
tofu=$root/bin/tofu-$TOFU_VERSION
cliconfig=$root/tofurc

# A download from the module proxy can stall: bound each try, try again.
retry() {
  local i
  for i in 1 2 3; do
    timeout 900 "$@" && return 0
    echo "failed or stalled (try $i of 3): $*" >&2
  done
  return 1
}

# source_of MODULE@VERSION DEST: a writable copy of a module's source.
source_of() {
  local json dir
  json=$(retry go mod download -json "$1")
  dir=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"$json")
  if [ -z "$dir" ]; then
    echo "go mod download $1 gave no source:" >&2
    echo "$json" >&2
    return 1
  fi
  cp -R "$dir" "$2"
  chmod -R u+w "$2"
}

# build NAME OUT MODULE@VERSION PACKAGE [PREPARE]: builds PACKAGE of the
# module into OUT, unless OUT exists; PREPARE runs in the source copy first.
build() {
  local name=$1 out=$2 module=$3 pkg=$4 prepare=${5:-} tmp start
  if [ -x "$out" ]; then
    return 0
  fi
  echo "Building $name ($module) into $out" >&2
  start=$SECONDS
  mkdir -p "$(dirname "$out")" "$root/tmp"
  tmp=$(mktemp -d "$root/tmp/build.XXXXXX")
  # shellcheck disable=SC2064 # expanded now: this build's folder
  trap "rm -rf '$tmp'" EXIT
  source_of "$module" "$tmp/src"
  if [ -n "$prepare" ]; then (cd "$tmp/src" && "$prepare"); fi
  # -s -w: no symbol table or DWARF (smaller, faster to link); -trimpath:
  # no machine paths in the binary.
  (cd "$tmp/src" && retry go mod download && nice -n 10 go build -trimpath \
    -ldflags="-s -w ${LDFLAGS_EXTRA:-}" -o "$tmp/out" "$pkg")
  mv "$tmp/out" "$out"
  rm -rf "$tmp"
  trap - EXIT
  echo "Built $name in $((SECONDS - start)) s" >&2
}

prepare_kubernetes() {
  patch -s -p1 <"$here/kubernetes-provider-v$KUBERNETES_VERSION.patch"
  mkdir -p stub/vbom-util
  printf 'module vbom.ml/util\n' >stub/vbom-util/go.mod
  go mod edit -replace vbom.ml/util=./stub/vbom-util
  # The module has an empty vendor folder (modules.txt only).
  rm -rf vendor
}

# mirror TYPE VERSION BINARY: the provider in the mirror under both
# registry host names (OpenTofu's and terraform's defaults for
# hashicorp/TYPE), so that the configuration works with either CLI.
mirror() {
  local host dir
  for host in registry.opentofu.org registry.terraform.io; do
    dir=$root/mirror/$host/hashicorp/$1/$2/$platform
    if [ ! -e "$dir/terraform-provider-$1_v$2" ]; then
      mkdir -p "$dir"
      ln -f "$3" "$dir/terraform-provider-$1_v$2.tmp" 2>/dev/null || cp "$3" "$dir/terraform-provider-$1_v$2.tmp"
      mv "$dir/terraform-provider-$1_v$2.tmp" "$dir/terraform-provider-$1_v$2"
    fi
  done
}

main() {
  mkdir -p "$root"
  exec 9>"$root/lock"
  flock 9
  # Under the lock no build runs: what an interrupted one left is garbage.
  rm -rf "$root/tmp"

  # version.dev=no: a release build (`tofu version` says v1.12.6, not -dev).
  LDFLAGS_EXTRA=-X=github.com/opentofu/opentofu/version.dev=no build "OpenTofu $TOFU_VERSION" "$tofu" \
    "github.com/opentofu/opentofu@$TOFU_VERSION" ./cmd/tofu
  # -checklinkname=0: the provider's old dependencies (reflect2) reach into
  # the runtime by go:linkname, which the linker refuses by default.
  LDFLAGS_EXTRA=-checklinkname=0 build "kubernetes provider v$KUBERNETES_VERSION" \
    "$root/bin/terraform-provider-kubernetes-v$KUBERNETES_VERSION" \
    "github.com/hashicorp/terraform-provider-kubernetes@v$KUBERNETES_VERSION" . prepare_kubernetes
  mirror kubernetes "$KUBERNETES_VERSION" "$root/bin/terraform-provider-kubernetes-v$KUBERNETES_VERSION"

  # Only the mirror: a provider that is not there fails `init`, nothing is
  # downloaded.
  cat >"$cliconfig.tmp" <<EOF
provider_installation {
  filesystem_mirror {
    path = "$root/mirror"
  }
}
EOF
  mv "$cliconfig.tmp" "$cliconfig"

  if [ "${1:-}" = env ]; then
    echo "export RUNBOAT_TOFU=$tofu"
    echo "export TF_CLI_CONFIG_FILE=$cliconfig"
  fi
}

main "$@"
