#!/usr/bin/env bash
# deps.sh installs or builds every binary the end-to-end tests need, from a bare machine.
#
# Binaries are cached outside the clone, keyed by version, so a fresh clone (CI) on a machine
# that built them once reuses them; a new machine rebuilds them (~20 min on 2 cores).
#
#   test/tools/deps.sh            build/install everything missing, print the cache dir
#   test/tools/deps.sh --print    print the cache dir only
set -euo pipefail

KUBE_VERSION=${KUBE_VERSION:-v1.34.2}
ETCD_VERSION=${ETCD_VERSION:-v3.6.5}
PROM3_VERSION=${PROM3_VERSION:-v0.309.1}   # Prometheus 3.9.1 as a Go module version
# Thanos: v0.42.5 needs Go >= 1.26.10; v0.42.4 builds with the machine's Go 1.26.8.
THANOS_VERSION=${THANOS_VERSION:-v0.42.4}
# Helm: v3.22.0 (go 1.26.0 in its go.mod) builds with the machine's Go 1.26.8.
HELM_VERSION=${HELM_VERSION:-v3.22.0}
CACHE=${PROMADAPTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/promadapter}
BIN="$CACHE/bin"
mkdir -p "$BIN" "$CACHE/build"
log() { echo "deps: $*" >&2; }

if [[ "${1:-}" == "--print" ]]; then echo "$BIN"; exit 0; fi

# Serialise concurrent callers (make test and make demo may race on a new machine).
exec 9>"$CACHE/.lock"
flock 9

kube_staging=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider
  cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api cri-client
  csi-translation-lib devicemanager dynamic-resource-allocation endpointslice externaljwt kms kube-aggregator
  kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics mount-utils pod-security-admission
  sample-apiserver sample-cli-plugin sample-controller)

build_kube() {
  local want=("kube-apiserver" "kube-controller-manager" "kubectl")
  local missing=0
  for b in "${want[@]}"; do [[ -x "$BIN/$b-$KUBE_VERSION" ]] || missing=1; done
  (( missing )) || return 0
  local dir="$CACHE/build/kube-$KUBE_VERSION"
  mkdir -p "$dir"
  log "building Kubernetes $KUBE_VERSION control plane (kube-apiserver ~7 min, controller-manager ~2 min on 2 cores)"
  (
    cd "$dir"
    if [[ ! -f go.mod ]]; then
      go mod init promadapter.local/kubebuild >/dev/null 2>&1
      go mod edit -require="k8s.io/kubernetes@$KUBE_VERSION"
      local minor="v0.${KUBE_VERSION#v1.}"
      for m in "${kube_staging[@]}"; do go mod edit -replace="k8s.io/$m=k8s.io/$m@$minor"; done
      cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
      go mod tidy >/dev/null
    fi
    for b in "${want[@]}"; do
      [[ -x "$BIN/$b-$KUBE_VERSION" ]] && continue
      log "go build $b"
      go build -trimpath -ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION" -o "$BIN/$b-$KUBE_VERSION.tmp" "k8s.io/kubernetes/cmd/$b"
      mv "$BIN/$b-$KUBE_VERSION.tmp" "$BIN/$b-$KUBE_VERSION"
    done
  )
}

build_etcd() {
  [[ -x "$BIN/etcd-$ETCD_VERSION" ]] && return 0
  local dir="$CACHE/build/etcd-$ETCD_VERSION"
  mkdir -p "$dir"
  log "building etcd $ETCD_VERSION (~1 min)"
  (
    cd "$dir"
    if [[ ! -f go.mod ]]; then
      go mod init promadapter.local/etcdbuild >/dev/null 2>&1
      cat > main.go <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
      go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null 2>&1
      go mod tidy >/dev/null
    fi
    go build -trimpath -ldflags="-s -w" -o "$BIN/etcd-$ETCD_VERSION.tmp" .
    mv "$BIN/etcd-$ETCD_VERSION.tmp" "$BIN/etcd-$ETCD_VERSION"
  )
}

build_prom3() {
  [[ -x "$BIN/prometheus-$PROM3_VERSION" && -x "$BIN/promtool-$PROM3_VERSION" ]] && return 0
  log "building Prometheus 3 ($PROM3_VERSION) from its Go module (~9 min)"
  go mod download "github.com/prometheus/prometheus@$PROM3_VERSION"
  local src
  src=$(go env GOMODCACHE)/github.com/prometheus/prometheus@$PROM3_VERSION
  local dir="$CACHE/build/prometheus-$PROM3_VERSION"
  rm -rf "$dir"; mkdir -p "$dir"
  cp -r "$src/." "$dir/"; chmod -R u+w "$dir"
  (
    cd "$dir"
    for b in prometheus promtool; do
      go build -trimpath -ldflags="-s -w" -o "$BIN/$b-$PROM3_VERSION.tmp" "./cmd/$b"
      mv "$BIN/$b-$PROM3_VERSION.tmp" "$BIN/$b-$PROM3_VERSION"
    done
  )
  rm -rf "$dir"
}

# build_thanos builds the thanos binary (querier and sidecar) from its module. Its go.mod carries
# replace directives a wrapper module would ignore, so it is built inside a copy of its own tree,
# with the build tags of Thanos' own release (.promu.yml): without slicelabels its gRPC codec
# panics on the first series call. The tags are in the cached name, so a binary built without
# them is never reused.
THANOS_BIN="thanos-$THANOS_VERSION-slicelabels"
build_thanos() {
  [[ -x "$BIN/$THANOS_BIN" ]] && return 0
  log "building Thanos $THANOS_VERSION from its Go module (~10 min)"
  go mod download "github.com/thanos-io/thanos@$THANOS_VERSION"
  local src
  src=$(go env GOMODCACHE)/github.com/thanos-io/thanos@$THANOS_VERSION
  local dir="$CACHE/build/thanos-$THANOS_VERSION"
  rm -rf "$dir"; mkdir -p "$dir"
  cp -r "$src/." "$dir/"; chmod -R u+w "$dir"
  (
    cd "$dir"
    go build -trimpath -tags netgo,slicelabels -ldflags="-s -w" -o "$BIN/$THANOS_BIN.tmp" ./cmd/thanos
    mv "$BIN/$THANOS_BIN.tmp" "$BIN/$THANOS_BIN"
  )
  rm -rf "$dir"
}

# build_helm builds helm (for `make chart-lint` and the chart tests) in a wrapper module of its own, as
# build_etcd does, so the project's go.mod never sees Helm's dependencies. Helm's own Makefile stamps
# the version and the Kubernetes version its client-go targets: without the latter, `helm template`
# and `helm lint` assume Kubernetes v1.20 and refuse a chart whose kubeVersion asks for more.
build_helm() {
  [[ -x "$BIN/helm-$HELM_VERSION" ]] && return 0
  local dir="$CACHE/build/helm-$HELM_VERSION"
  mkdir -p "$dir"
  log "building helm $HELM_VERSION (~2 min)"
  (
    cd "$dir"
    if [[ ! -f go.sum ]]; then  # go.sum is written last: its absence means an unfinished set-up
      rm -f go.mod tools.go
      go mod init promadapter.local/helmbuild >/dev/null 2>&1
      go mod edit -require="helm.sh/helm/v3@$HELM_VERSION"
      cat > tools.go <<'GO'
//go:build tools

package tools

import _ "helm.sh/helm/v3/cmd/helm"
GO
      go mod tidy >/dev/null
    fi
    # client-go v0.M.N targets Kubernetes 1.M (as in Helm's Makefile).
    local client_go kube_minor
    client_go=$(go list -m -f '{{.Version}}' k8s.io/client-go)
    kube_minor=$(cut -d. -f2 <<<"${client_go#v}")
    local pkg=helm.sh/helm/v3
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X $pkg/internal/version.version=$HELM_VERSION \
-X $pkg/pkg/lint/rules.k8sVersionMajor=1 -X $pkg/pkg/lint/rules.k8sVersionMinor=$kube_minor \
-X $pkg/pkg/chartutil.k8sVersionMajor=1 -X $pkg/pkg/chartutil.k8sVersionMinor=$kube_minor" \
      -o "$BIN/helm-$HELM_VERSION.tmp" "$pkg/cmd/helm"
    mv "$BIN/helm-$HELM_VERSION.tmp" "$BIN/helm-$HELM_VERSION"
  )
}

install_victoriametrics() {
  [[ -x /usr/bin/victoria-metrics ]] && return 0
  log "installing VictoriaMetrics (single node) from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends victoria-metrics >/dev/null
  (systemctl stop victoria-metrics 2>/dev/null || true)
}

install_prom2() {
  if [[ -x /usr/bin/prometheus && -x /usr/bin/promtool ]]; then return 0; fi
  log "installing Prometheus 2.x from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  # The package may try to start a service; the tests start their own. Stop only that service
  # (through its init system, which knows its pid), never every process named prometheus: other
  # test runs on this machine may have theirs running.
  (systemctl stop prometheus prometheus-node-exporter 2>/dev/null || true)
  if [[ -x /etc/init.d/prometheus ]]; then (/etc/init.d/prometheus stop >/dev/null 2>&1 || true); fi
}

# install_qemu_user installs Debian's user-mode emulators, with which the end-to-end tests run the
# arm64 and riscv64 binaries of `make images` (test/e2e/images_test.go calls qemu-<arch>-static
# directly, so binfmt_misc registration is not needed, but binfmt-support provides it for those who
# want to run foreign binaries by name).
# (ca-certificates too: `make images` puts the machine's CA bundle in the images.)
install_qemu_user() {
  if [[ -x /usr/bin/qemu-aarch64-static && -x /usr/bin/qemu-riscv64-static && -x /usr/sbin/update-binfmts &&
        -f /etc/ssl/certs/ca-certificates.crt ]]; then return 0; fi
  log "installing qemu-user-static, binfmt-support and ca-certificates from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends qemu-user-static binfmt-support ca-certificates >/dev/null
}

install_prom2
build_etcd
build_kube
build_prom3
build_thanos
build_helm
install_victoriametrics
install_qemu_user
# kubectl: the machine's own is fine; otherwise the one just built.
if ! command -v kubectl >/dev/null 2>&1; then ln -sf "$BIN/kubectl-$KUBE_VERSION" "$BIN/kubectl"; fi
log "all test binaries present in $BIN"
echo "$BIN"
