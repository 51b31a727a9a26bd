#!/usr/bin/env bash
# Installs every package bgmigrate needs to build, test and run, from Debian 12's archive.
# Idempotent and quiet when everything is present. Needs root (or sudo) only to install.
#   scripts/deps.sh            build + run + test packages
#   scripts/deps.sh --browser  also Node.js, npm and Chromium for the browser tests
set -euo pipefail

packages=(
  build-essential cmake ccache pkg-config git curl ca-certificates procps shellcheck
  libpq-dev libcurl4-openssl-dev libssl-dev zlib1g-dev
  nlohmann-json3-dev libcpp-httplib-dev libspdlog-dev libfmt-dev libcli11-dev libtomlplusplus-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  postgresql clickhouse-server clickhouse-client
  zookeeper  # services.sh --cluster: the replicas' coordination (brings a JRE)
  prometheus  # promtool: scripts/test.sh checks and tests docs/alerts.yml
)
if [[ "${1:-}" == "--browser" ]]; then
  packages+=(chromium)
  # Some images ship Node.js (with its own npm) from elsewhere; Debian's npm would conflict.
  command -v node >/dev/null || packages+=(nodejs)
  command -v npm >/dev/null || packages+=(npm)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "deps: installing ${missing[*]}" >&2
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# Installing a server package must not try to start it: services.sh runs private instances.
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: done" >&2
