#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian machine: npm dependencies, Debian's nats-server and
# docker.io, busybox-static and debootstrap for the local images, python3-optuna for the
# benchmark, chromium for the monitor's browser tests, and a running dockerd. Quiet when
# everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[setup] %s\n' "$*" >&2; }
is_root() { [ "$(id -u)" = 0 ]; }

# --- npm dependencies -------------------------------------------------------------------
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi

# --- Debian packages --------------------------------------------------------------------
missing=()
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || missing+=(nats-server)
[ -x /usr/sbin/dockerd ] || command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
[ -x /bin/busybox ] || missing+=(busybox-static)
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
/usr/bin/python3 -c 'import optuna' >/dev/null 2>&1 || missing+=(python3-optuna)
# the tests of sites on their own networks make namespaces and links with ip (test/harness/netns.ts)
command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || [ -x /bin/ip ] || missing+=(iproute2)
# the monitor's browser tests drive Debian's chromium through playwright-core (never a downloaded browser)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if is_root; then
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    say "missing system packages: ${missing[*]}"
    say "install them as root:  sudo apt-get install -y --no-install-recommends ${missing[*]}"
    exit 1
  fi
fi

# --- dockerd ----------------------------------------------------------------------------
docker_ok() { curl -fsS --unix-socket /var/run/docker.sock http://localhost/_ping >/dev/null 2>&1; }
if [ -z "${DOCKER_HOST:-}" ] && ! docker_ok; then
  if is_root; then
    say "starting dockerd (log: /var/log/gridtune-dockerd.log)"
    DOCKERD=/usr/sbin/dockerd; [ -x "$DOCKERD" ] || DOCKERD=$(command -v dockerd)
    setsid "$DOCKERD" >/var/log/gridtune-dockerd.log 2>&1 < /dev/null &
    for _ in $(seq 1 150); do docker_ok && break; sleep 0.2; done
    docker_ok || { say "dockerd did not answer within 30 s; see /var/log/gridtune-dockerd.log"; exit 1; }
  else
    say "no Docker daemon answers on /var/run/docker.sock and this user cannot start one;"
    say "start it as root (dockerd &) or set DOCKER_HOST. The process runtime works without it."
  fi
fi

# --- local images (no registry): built once per machine ---------------------------------
if docker_ok && is_root; then
  bash containers/build-images.sh
fi
