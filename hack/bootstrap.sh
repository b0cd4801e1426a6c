#!/usr/bin/env bash
# Installs everything the demo and the tests need on a fresh Debian machine,
# idempotently: Debian packages (only when missing), a project virtualenv (.venv)
# holding this project with its dev extras (never the system interpreter), the
# Go-built Kubernetes tools (cached per version, see build-tools.sh) and the local
# node's images (built with buildah, cached by their inputs, see
# localcluster/images.py). Safe to run again; a warm machine takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

# chromium: Debian's browser for the dashboard's tests (Playwright drives it as the system
# browser; no browser is ever downloaded by a test tool).
apt_packages=(redis-server redis-tools prometheus iproute2 openssl chromium
  # the local node: container runtime, CNI plugins, kube-proxy's iptables, image builds
  containerd runc containernetworking-plugins iptables conntrack util-linux buildah mmdebstrap)
# Node.js runs the BullMQ workers of the foreign-queue tests (tests/foreign/node).
command -v node >/dev/null && command -v npm >/dev/null || apt_packages+=(nodejs npm)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing Debian packages: ${missing[*]}" >&2
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The project virtualenv; the Makefile runs everything with .venv/bin/python and puts
# .venv/bin first on PATH (so `jobq`, pytest and the hack/ scripts resolve there).
venv=.venv
if [ ! -x "$venv/bin/python" ]; then
  echo "bootstrap: creating the project virtualenv $venv" >&2
  "${BOOTSTRAP_PYTHON:-python3}" -m venv "$venv"
fi
# The package and its dev extras; pip is quick when everything is satisfied.
stamp=$venv/.bootstrap-stamp
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ ! -x "$venv/bin/jobq" ]; then
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -e '.[dev]'
  touch "$stamp"
fi

hack/build-tools.sh >/dev/null
"$venv/bin/python" hack/localcluster.py images >/dev/null
