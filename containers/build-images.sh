#!/usr/bin/env bash
# Builds the images that gridtune's tests, demo and benchmark use, WITHOUT any registry (none can be
# reached on the build machines): each image is a root filesystem made on this machine and fed to
# `docker import`.
#
#   gridtune/busybox:1  Debian's busybox-static plus its applet links (tiny; for runtime tests)
#   gridtune/python:1   a minimal Debian bookworm with python3 (debootstrap --variant=minbase)
#   gridtune/steering:1 the same plus Debian's python3-optuna and the `hpogrid` shim
#                       (examples/steering/hpogrid.py as /usr/local/bin/hpogrid): the example
#                       PanDA steering container (a second debootstrap, about 2 minutes; cached)
#
# Both have /tmp with mode 1777 (a tmpfs mounted on /tmp copies the image directory's mode, so a
# 755 /tmp would be unwritable for the job user), a non-root user 1000 ("gridtune"), PATH set, and
# /srv/workDir, the fixed path where the evaluator mounts a job's working directory.
#
# Usage: sudo containers/build-images.sh [--rebuild] [--clean] [--only busybox|python|steering]
#   (no flag)  build only the images that do not exist yet (idempotent)
#   --rebuild  re-import the images even if they exist (reuses the cached rootfs tarballs)
#   --clean    also delete the cached rootfs tarballs under containers/build/ first
# Env: GRIDTUNE_DEBIAN_MIRROR overrides the mirror read from /etc/apt/sources.list{,.d/*}.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUILD="$HERE/build"
BUSYBOX_IMAGE="gridtune/busybox:1"
PYTHON_IMAGE="gridtune/python:1"
STEERING_IMAGE="gridtune/steering:1"
SUITE="bookworm"
IMAGE_PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

rebuild=0
clean=0
only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rebuild) rebuild=1 ;;
    --clean) clean=1; rebuild=1 ;;
    --only) only="${2:-}"; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "build-images.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done

say() { echo "[build-images] $*"; }
die() { echo "[build-images] ERROR: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, chown and the docker socket need it): sudo $0 $*"
command -v docker >/dev/null || die "the docker CLI is not on PATH (apt-get install docker.io)"
if ! timeout 15 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
  die "dockerd does not answer on ${DOCKER_HOST:-unix:///var/run/docker.sock}; start it with: dockerd >/var/log/dockerd.log 2>&1 &"
fi

mkdir -p "$BUILD"
# The rootfs being made, removed on any exit (a half-made one is never reused: only tarballs are).
tmp_root=""
trap 'if [ -n "$tmp_root" ]; then rm -rf "$tmp_root"; fi' EXIT
# Tests in parallel may call this script at the same time: one builds, the others wait and skip.
exec 9>"$BUILD/.lock"
flock -w 900 9 || die "another build-images.sh holds $BUILD/.lock for more than 15 minutes"

if [ "$clean" -eq 1 ]; then
  say "--clean: removing cached rootfs tarballs in $BUILD"
  rm -f "$BUILD"/*.rootfs.tar
fi

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

want() { [ -z "$only" ] || [ "$only" = "$1" ]; }

# Writes the files every gridtune image needs into the rootfs at $1.
# Finishes a rootfs, packs it into the cache tarball (atomically: .part, then rename) and removes it.
pack_rootfs() {
  local root="$1" tarball="$2"
  finish_rootfs "$root"
  say "packing $tarball"
  tar --numeric-owner -C "$root" -cf "$tarball.part" . && mv "$tarball.part" "$tarball"
  rm -rf "$root"; tmp_root=""
}

finish_rootfs() {
  local root="$1"
  mkdir -p "$root/tmp" "$root/srv/workDir" "$root/etc"
  chmod 1777 "$root/tmp"
  chmod 0755 "$root/srv/workDir"
  # Keep existing entries (debootstrap's) and add the job user once.
  touch "$root/etc/passwd" "$root/etc/group"
  grep -q '^root:' "$root/etc/passwd" || echo 'root:x:0:0:root:/root:/bin/sh' >>"$root/etc/passwd"
  grep -q '^root:' "$root/etc/group" || echo 'root:x:0:' >>"$root/etc/group"
  grep -q ':x:1000:' "$root/etc/passwd" || echo 'gridtune:x:1000:1000:gridtune job user:/tmp:/bin/sh' >>"$root/etc/passwd"
  grep -q ':x:1000:' "$root/etc/group" || echo 'gridtune:x:1000:' >>"$root/etc/group"
}

import_rootfs() {
  local tarball="$1" image="$2"
  say "docker import $tarball -> $image"
  docker import \
    -c "ENV PATH=$IMAGE_PATH" \
    -c "ENV LANG=C.UTF-8" \
    -c "WORKDIR /srv/workDir" \
    -c "USER 1000:1000" \
    -m "gridtune local build (containers/build-images.sh)" \
    "$tarball" "$image" >/dev/null
  say "$image = $(docker image inspect --format '{{.Id}} ({{.Size}} bytes)' "$image")"
}

build_busybox() {
  local tarball="$BUILD/busybox.rootfs.tar"
  if [ ! -s "$tarball" ]; then
    local bb=""
    for c in /bin/busybox /usr/bin/busybox; do
      if [ -x "$c" ] && file -L "$c" 2>/dev/null | grep -q 'statically linked'; then bb="$c"; break; fi
    done
    if [ -z "$bb" ]; then
      say "installing busybox-static (apt-get)"
      apt-get install -y busybox-static >/dev/null || die "apt-get install busybox-static failed"
      bb=/bin/busybox
    fi
    tmp_root="$(mktemp -d "$BUILD/busybox-rootfs.XXXXXX")"
    local root="$tmp_root"
    say "making the busybox rootfs from $bb"
    mkdir -p "$root/bin" "$root/usr/bin" "$root/sbin" "$root/usr/sbin"
    cp "$bb" "$root/bin/busybox"
    # One link per applet, in /bin (the applets list is the binary's own).
    local n=0
    for applet in $("$root/bin/busybox" --list); do
      [ "$applet" = busybox ] && continue
      ln -sf busybox "$root/bin/$applet"
      n=$((n + 1))
    done
    say "linked $n applets"
    pack_rootfs "$root" "$tarball"
  else
    say "reusing cached $tarball"
  fi
  import_rootfs "$tarball" "$BUSYBOX_IMAGE"
}

# The Debian mirror that apt on this machine uses (deb822 .sources or one-line .list formats).
debian_mirror() {
  if [ -n "${GRIDTUNE_DEBIAN_MIRROR:-}" ]; then echo "$GRIDTUNE_DEBIAN_MIRROR"; return; fi
  local f uri
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    case "$f" in
      *.sources)
        # The first URIs: of a stanza whose Suites name the plain suite (not -security).
        uri="$(awk -v s="$SUITE" '
          /^[[:space:]]*$/ { if (u != "" && ok) { print u; exit } u=""; ok=0; next }
          /^URIs:/ { u=$2 }
          /^Suites:/ { for (i=2;i<=NF;i++) if ($i==s) ok=1 }
          END { if (u != "" && ok) print u }' "$f" | head -n1)" ;;
      *)
        uri="$(awk -v s="$SUITE" '$1=="deb" { for (i=2;i<=NF;i++) if ($i==s) { for (j=2;j<i;j++) if ($j ~ /^[a-z]+:\/\//) { print $j; exit } } }' "$f" | head -n1)" ;;
    esac
    if [ -n "$uri" ]; then echo "$uri"; return; fi
  done
  echo "http://deb.debian.org/debian"
}

# Fallback when debootstrap cannot work: the host's python3.11, the libraries ldd lists, its stdlib.
python_rootfs_from_host() {
  local root="$1" py=/usr/bin/python3.11
  [ -x "$py" ] || die "debootstrap failed and $py is missing, so no python image can be made"
  say "FALLBACK: copying the host's $py, its libraries and /usr/lib/python3.11 into the rootfs"
  mkdir -p "$root/usr/bin" "$root/usr/lib" "$root/bin"
  cp -a "$py" "$root/usr/bin/python3.11"
  ln -sf python3.11 "$root/usr/bin/python3"
  local lib
  for lib in $(ldd "$py" | grep -o '/[^ ]*'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
  cp -a /usr/lib/python3.11 "$root/usr/lib/"
  # A shell for exec_in_container.sh style payloads.
  if [ -x /bin/busybox ]; then cp /bin/busybox "$root/bin/busybox"; ln -sf busybox "$root/bin/sh"; ln -sf busybox "$root/bin/tar"; fi
}

build_python() {
  local tarball="$BUILD/python.rootfs.tar"
  if [ ! -s "$tarball" ]; then
    tmp_root="$(mktemp -d "$BUILD/python-rootfs.XXXXXX")"
    local root="$tmp_root"
    if ! command -v debootstrap >/dev/null; then
      say "installing debootstrap (apt-get)"
      apt-get install -y debootstrap >/dev/null 2>&1 || say "apt-get install debootstrap failed"
    fi
    local ok=0
    if command -v debootstrap >/dev/null; then
      local mirror; mirror="$(debian_mirror)"
      say "debootstrap --variant=minbase --include=python3 $SUITE $root $mirror (about a minute)"
      local t0=$SECONDS
      if debootstrap --variant=minbase --include=python3 "$SUITE" "$root" "$mirror" >"$BUILD/debootstrap.log" 2>&1; then
        ok=1
        say "debootstrap done in $((SECONDS - t0)) s"
        # Apt lists and caches are useless in a read-only job image.
        rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/*
      else
        say "debootstrap failed (see $BUILD/debootstrap.log); falling back to the host's python"
        rm -rf "$root"; mkdir -p "$root"
      fi
    fi
    [ "$ok" -eq 1 ] || python_rootfs_from_host "$root"
    pack_rootfs "$root" "$tarball"
  else
    say "reusing cached $tarball"
  fi
  import_rootfs "$tarball" "$PYTHON_IMAGE"
}

# The example steering image: debootstrap with python3-optuna (Debian's package and its
# dependencies: numpy, scipy, sqlalchemy, ...), cached as steering.rootfs.tar like the python one.
# The hpogrid shim is added at import time, so editing it needs only --rebuild --only steering.
build_steering() {
  local tarball="$BUILD/steering.rootfs.tar"
  if [ ! -s "$tarball" ]; then
    tmp_root="$(mktemp -d "$BUILD/steering-rootfs.XXXXXX")"
    local root="$tmp_root"
    if ! command -v debootstrap >/dev/null; then
      say "installing debootstrap (apt-get)"
      apt-get install -y debootstrap >/dev/null 2>&1 || die "apt-get install debootstrap failed"
    fi
    local mirror; mirror="$(debian_mirror)"
    say "debootstrap --variant=minbase --include=python3,python3-optuna $SUITE $root $mirror (about 2 minutes)"
    local t0=$SECONDS
    debootstrap --variant=minbase --include=python3,python3-optuna "$SUITE" "$root" "$mirror" \
      >"$BUILD/debootstrap-steering.log" 2>&1 \
      || die "debootstrap of the steering image failed (see $BUILD/debootstrap-steering.log)"
    say "debootstrap done in $((SECONDS - t0)) s"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/*
    pack_rootfs "$root" "$tarball"
  else
    say "reusing cached $tarball"
  fi
  # The rootfs plus the shim: a copy of the tarball with usr/local/bin/hpogrid appended.
  local shim="$HERE/../examples/steering/hpogrid.py"
  [ -f "$shim" ] || die "$shim is missing"
  tmp_root="$(mktemp -d "$BUILD/steering-shim.XXXXXX")"
  mkdir -p "$tmp_root/usr/local/bin"
  install -m 0755 "$shim" "$tmp_root/usr/local/bin/hpogrid"
  cp "$tarball" "$tmp_root/image.tar"
  tar --numeric-owner --owner=0 --group=0 -C "$tmp_root" -rf "$tmp_root/image.tar" ./usr/local/bin/hpogrid
  import_rootfs "$tmp_root/image.tar" "$STEERING_IMAGE"
  rm -rf "$tmp_root"; tmp_root=""
  docker run --rm --network none "$STEERING_IMAGE" python3 -c 'import optuna; print("optuna", optuna.__version__)' \
    || die "$STEERING_IMAGE cannot import optuna"
}

for spec in "busybox:$BUSYBOX_IMAGE" "python:$PYTHON_IMAGE" "steering:$STEERING_IMAGE"; do
  name="${spec%%:*}"; image="${spec#*:}"
  want "$name" || continue
  if [ "$rebuild" -eq 0 ] && image_exists "$image"; then
    say "$image exists (use --rebuild to re-import it)"
    continue
  fi
  t0=$SECONDS
  "build_$name"
  say "$image ready in $((SECONDS - t0)) s"
done
say "done"
