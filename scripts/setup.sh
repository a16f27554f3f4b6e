#!/usr/bin/env bash
# Installs the Debian packages ctxlab needs (only those missing), then configures and builds.
#   scripts/setup.sh            packages + release build (build/)
#   scripts/setup.sh --deps     packages only
#   scripts/setup.sh --asan     packages + ASan/UBSan build (build-asan/)
#   scripts/setup.sh --werror   packages + -Werror build (build-werror/)
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(
  build-essential cmake pkg-config git
  liburing-dev libdw-dev libelf-dev zlib1g-dev libinih-dev libjansson-dev libcmocka-dev
  clang libclang-rt-14-dev
  wrk nginx-light golang-go sysstat apache2-utils hey linux-perf nghttp2-client
  iproute2 procps curl chromium python3 valgrind heaptrack strace
  openssh-client openssh-server
)

install_deps() {
  local missing=()
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "setup: installing ${missing[*]}" >&2
  local SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  # nginx-light's package starts a system nginx on port 80; ctxlab starts its own. Stop only
  # what this install started: a user's own nginx (running, or enabled) is left alone.
  local nginx_before="" nginx_enabled=""
  nginx_before=" $(pgrep -x nginx | tr '\n' ' ')"
  if command -v systemctl >/dev/null 2>&1 && systemctl is-enabled --quiet nginx 2>/dev/null; then
    nginx_enabled=1
  fi
  # openssh-server's package enables (and may start) the system sshd; the tests start their
  # own (tests/integration/test_run_ssh.py). Same rule: only what this install started.
  local sshd_before="" ssh_enabled=""
  sshd_before=" $(pgrep -x sshd | tr '\n' ' ')"
  if command -v systemctl >/dev/null 2>&1 && systemctl is-enabled --quiet ssh 2>/dev/null; then
    ssh_enabled=1
  fi
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [[ " ${missing[*]} " == *" nginx-light "* ]]; then
    if [ -z "$nginx_enabled" ] && [ -z "${nginx_before// /}" ] && command -v systemctl >/dev/null 2>&1; then
      $SUDO systemctl disable --now nginx >/dev/null 2>&1 || true
    fi
    local p
    for p in $(pgrep -x nginx); do
      [[ "$nginx_before" == *" $p "* ]] || $SUDO kill "$p" 2>/dev/null || true
    done
  fi
  if [[ " ${missing[*]} " == *" openssh-server "* ]]; then
    if [ -z "$ssh_enabled" ] && [ -z "${sshd_before// /}" ] && command -v systemctl >/dev/null 2>&1; then
      $SUDO systemctl disable --now ssh ssh.socket >/dev/null 2>&1 || true
    fi
    local p
    for p in $(pgrep -x sshd); do
      [[ "$sshd_before" == *" $p "* ]] || $SUDO kill "$p" 2>/dev/null || true
    done
  fi
}

build() { # dir cmake-args...
  local dir=$1; shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j"$(nproc)"
}

mode=${1:-}
install_deps
case "$mode" in
  --deps) ;;
  --asan) build build-asan -DCTXLAB_SANITIZE=ON ;;
  --werror) build build-werror -DCTXLAB_WERROR=ON ;;
  ""|--release) build build ;;
  *) echo "setup: unknown option '$mode' (use --deps, --asan, --werror)" >&2; exit 2 ;;
esac
