#!/usr/bin/env bash
# A private Docker engine for tests and CI (Debian bookworm, root). Nothing is pulled.
#
#   tests/ci/docker.sh [start]   install docker.io + busybox-static if missing, start dockerd with
#                                its own data root and socket, build the test image
#                                `ctui-test-busybox`, print `DOCKER_HOST=unix://…` (last line)
#   tests/ci/docker.sh stop      stop that dockerd
#
# Usage from CI (.ci/run): take the last line only when the script succeeded, e.g.
#   line=$(bash tests/ci/docker.sh | tail -n 1) || exit 1; export "$line"
# (`export "$(… | tail -n 1)"` alone ignores the script's exit status.)
# It exits non-zero, saying why, when the engine or the image is not there.
# The folder is $CTUI_DOCKER_DIR (default /tmp/ctui-dockerd). Starting twice reuses the engine.
set -euo pipefail

D=${CTUI_DOCKER_DIR:-/tmp/ctui-dockerd}
SOCK=$D/docker.sock
PIDFILE=$D/dockerd.pid
IMAGE=ctui-test-busybox
HOST=unix://$SOCK
say() { echo "docker.sh: $*" >&2; }

# Prefer the client that ships with the engine (same API version); any docker CLI will do.
client() {
  local bin=docker
  [ -x /usr/bin/docker ] && bin=/usr/bin/docker
  DOCKER_HOST=$HOST DOCKER_BUILDKIT=0 "$bin" "$@"
}

answers() { client version >/dev/null 2>&1; }

stop() {
  [ -f "$PIDFILE" ] || { say "not running"; return 0; }
  local pid
  pid=$(cat "$PIDFILE")
  kill "$pid" 2>/dev/null || { rm -f "$PIDFILE"; return 0; }
  for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$PIDFILE"
  say "stopped dockerd ($pid)"
}

if [ "${1:-start}" = stop ]; then
  stop
  exit 0
fi

# -- packages -----------------------------------------------------------------------------
need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  apt-get update -q -o DPkg::Lock::Timeout=600 >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 --no-install-recommends "${need[@]}" >/dev/null
fi

# -- engine -------------------------------------------------------------------------------
mkdir -p "$D"/{data,exec,build/context}
if ! answers; then
  rm -f "$SOCK" "$PIDFILE"
  # vfs: works on any filesystem (no overlay inside a container); no bridge, no iptables:
  # nothing here needs the network, and a CI box may forbid both.
  setsid dockerd --storage-driver=vfs --iptables=false --bridge=none \
    --data-root "$D/data" --exec-root "$D/exec" --host "$HOST" --pidfile "$PIDFILE" \
    </dev/null >"$D/dockerd.log" 2>&1 &
  for _ in $(seq 300); do answers && break; sleep 0.1; done
  if ! answers; then
    say "dockerd did not answer on $SOCK; last lines of $D/dockerd.log:"
    tail -n 20 "$D/dockerd.log" >&2
    exit 1
  fi
  say "dockerd answers on $SOCK"
fi

# -- test image: a busybox rootfs imported, plus what the tests need ------------------------
if ! client image inspect "$IMAGE" >/dev/null 2>&1; then
  R=$D/build/rootfs
  rm -rf "$R"
  mkdir -p "$R"/{bin,etc,tmp,workspace}
  chmod 1777 "$R/tmp"
  cp /bin/busybox "$R/bin/busybox"  # busybox-static: no libraries needed in the image
  applets=$("$R/bin/busybox" --list)  # (a failure inside `for … in $(…)` would go unnoticed)
  for applet in $applets; do
    [ -e "$R/bin/$applet" ] || ln -s busybox "$R/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$R/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$R/etc/group"
  tar -C "$R" -c . | client import - "$IMAGE-rootfs:latest" >/dev/null
  cat >"$D/build/context/Dockerfile" <<'DOCKERFILE'
FROM ctui-test-busybox-rootfs:latest
ENV PATH=/bin HOME=/tmp
LABEL org.ctui.test="1"
WORKDIR /workspace
CMD ["/bin/sh"]
DOCKERFILE
  client build -q -t "$IMAGE:latest" "$D/build/context" >/dev/null
  say "built image $IMAGE"
fi

# Only a working engine with the test image gets the DOCKER_HOST line: without it the tests
# would skip (CI fails them, tests/conftest.py), so say here what is missing and fail.
if ! answers; then
  say "dockerd stopped answering on $SOCK; last lines of $D/dockerd.log:"
  tail -n 20 "$D/dockerd.log" >&2 || true
  exit 1
fi
client image inspect "$IMAGE" >/dev/null 2>&1 || { say "image $IMAGE is missing after the build"; exit 1; }
echo "DOCKER_HOST=$HOST"
