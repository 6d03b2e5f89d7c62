#!/usr/bin/env bash
# Starts (or stops) the real services the tests and the demo use, all on 127.0.0.1:
#   moto server (SQS, SNS, SSM, EventBridge, DynamoDB, ECR, CloudFormation)   SLIPWAY_TEST_MOTO_URL
#   Docker engine 26: BuildKit, containerd image store, host network only     /var/run/docker.sock
#   arm64 emulation (qemu-user-static through binfmt_misc): the kernel's, so it outlives `stop`
#   docker-registry with htpasswd auth     SLIPWAY_TEST_REGISTRY, SLIPWAY_TEST_REGISTRY_USER/_PASSWORD_FILE
#   (and SLIPWAY_BUILD_NETWORK=host for builds on that engine)
#
#   source tests/services.sh start     starts what is not running, exports the variables
#   bash tests/services.sh stop        stops what `start` started (and only that)
#
# SLIPWAY_SERVICES picks the services (default "moto binfmt engine registry"); SLIPWAY_SERVICES_DIR keeps their
# state and logs; SLIPWAY_MOTO_PORT / SLIPWAY_REGISTRY_PORT choose ports (0 = a free one).
set -uo pipefail

# shellcheck source=../.ci/paths
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.ci/paths"
SLIPWAY_SERVICES_DIR=${SLIPWAY_SERVICES_DIR:-/tmp/slipway-services}
SLIPWAY_SERVICES=${SLIPWAY_SERVICES:-moto binfmt engine registry}
MOTO_PORT=${SLIPWAY_MOTO_PORT:-5055}
REGISTRY_PORT=${SLIPWAY_REGISTRY_PORT:-5056}

_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

_wait_for() { # name, seconds, command...
  local name=$1 secs=$2; shift 2
  for _ in $(seq 1 $((secs * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "services: $name did not come up in ${secs}s; see $SLIPWAY_SERVICES_DIR/$name.log" >&2
  tail -20 "$SLIPWAY_SERVICES_DIR/$name.log" >&2 2>/dev/null
  return 1
}

_wanted() { case " $SLIPWAY_SERVICES " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

_start_moto() {
  [ "$MOTO_PORT" = 0 ] && MOTO_PORT=$(_free_port)
  if ! curl -fsS "http://127.0.0.1:$MOTO_PORT/moto-api/" >/dev/null 2>&1; then
    if [ ! -x "$SLIPWAY_VENV/bin/moto_server" ]; then
      echo "services: moto is not installed in $SLIPWAY_VENV; run: bash .ci/install" >&2
      return 1
    fi
    nohup "$SLIPWAY_VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$SLIPWAY_SERVICES_DIR/moto.log" 2>&1 &
    echo $! >"$SLIPWAY_SERVICES_DIR/moto.pid"
    _wait_for moto 30 curl -fsS "http://127.0.0.1:$MOTO_PORT/moto-api/" || return 1
  fi
  export SLIPWAY_TEST_MOTO_URL="http://127.0.0.1:$MOTO_PORT"
  # moto accepts any credentials; the SDK still wants some.
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
}

# arm64 binaries run through qemu-user-static. The `F` flag of Debian's registration makes the kernel
# hold the interpreter open, so it also works inside build containers.
_start_binfmt() {
  local conf=/usr/lib/binfmt.d/qemu-aarch64.conf
  [ "$(uname -m)" = aarch64 ] && return 0
  if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    if [ "$(id -u)" -ne 0 ]; then
      echo "services: binfmt_misc is not mounted, so arm64 images cannot run here; as root: mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc" >&2
      return 1
    fi
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || return 1
  fi
  if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    if [ ! -f "$conf" ]; then
      echo "services: $conf is missing; run: bash .ci/install (qemu-user-static)" >&2
      return 1
    fi
    if [ "$(id -u)" -ne 0 ]; then
      echo "services: qemu-aarch64 is not registered with binfmt_misc; as root: cat $conf > /proc/sys/fs/binfmt_misc/register" >&2
      return 1
    fi
    cat "$conf" >/proc/sys/fs/binfmt_misc/register || return 1
  fi
}

# The engine CodeBuild's images run: BuildKit with the containerd image store, which builds
# multi-platform images and writes registry caches. No bridge and no iptables here: builds and
# containers use the host network (`--network host`).
_start_engine() {
  if ! docker info >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
      if [ -S /var/run/docker.sock ]; then
        echo "services: the Docker engine refuses you ($(id -un)); add yourself to the docker group: sudo usermod -aG docker $(id -un), then log in again" >&2
      else
        echo "services: no Docker engine is running and only root can start one; run: sudo bash tests/services.sh start (or sudo systemctl start docker)" >&2
      fi
      return 1
    fi
    cat >"$SLIPWAY_SERVICES_DIR/daemon.json" <<'JSON'
{ "features": { "containerd-snapshotter": true } }
JSON
    nohup dockerd --config-file "$SLIPWAY_SERVICES_DIR/daemon.json" --bridge=none --iptables=false \
      --ip6tables=false >"$SLIPWAY_SERVICES_DIR/dockerd.log" 2>&1 &
    echo $! >"$SLIPWAY_SERVICES_DIR/dockerd.pid"
    _wait_for dockerd 60 docker info || return 1
  fi
  if ! docker buildx version >/dev/null 2>&1; then
    echo "services: docker buildx is missing; run: bash .ci/install (Debian trixie's docker-buildx)" >&2
    return 1
  fi
  if ! docker info --format '{{json .DriverStatus}}' 2>/dev/null | grep -q 'io.containerd.snapshotter'; then
    echo "services: warning: the running engine does not use the containerd image store; multi-platform builds and registry caches need it (\"features\": {\"containerd-snapshotter\": true} in its daemon.json)" >&2
  fi
}

_start_registry() {
  [ "$REGISTRY_PORT" = 0 ] && REGISTRY_PORT=$(_free_port)
  local user=slipway pass_file="$SLIPWAY_SERVICES_DIR/registry.password"
  [ -s "$pass_file" ] || (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$pass_file")
  local pass; pass=$(cat "$pass_file")
  if ! curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$REGISTRY_PORT/v2/" 2>/dev/null | grep -q 401; then
    htpasswd -Bbn "$user" "$pass" >"$SLIPWAY_SERVICES_DIR/htpasswd"
    mkdir -p "$SLIPWAY_SERVICES_DIR/registry-data"
    cat >"$SLIPWAY_SERVICES_DIR/registry.yml" <<YML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $SLIPWAY_SERVICES_DIR/registry-data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$REGISTRY_PORT
auth:
  htpasswd:
    realm: slipway-test
    path: $SLIPWAY_SERVICES_DIR/htpasswd
YML
    nohup docker-registry serve "$SLIPWAY_SERVICES_DIR/registry.yml" >"$SLIPWAY_SERVICES_DIR/registry.log" 2>&1 &
    echo $! >"$SLIPWAY_SERVICES_DIR/registry.pid"
    _wait_for registry 30 sh -c "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$REGISTRY_PORT/v2/ | grep -q 401" || return 1
  fi
  export SLIPWAY_TEST_REGISTRY="127.0.0.1:$REGISTRY_PORT"
  export SLIPWAY_TEST_REGISTRY_USER=$user
  export SLIPWAY_TEST_REGISTRY_PASSWORD_FILE=$pass_file
}

services_start() {
  mkdir -p "$SLIPWAY_SERVICES_DIR"
  local started=()
  if _wanted moto; then _start_moto || return 1; started+=("moto $SLIPWAY_TEST_MOTO_URL"); fi
  if _wanted binfmt; then _start_binfmt || return 1; started+=("linux/arm64 emulation (qemu-user-static)"); fi
  if _wanted engine; then _start_engine || return 1; started+=("docker engine $(docker version --format '{{.Server.Version}}' 2>/dev/null) with buildx"); fi
  if _wanted registry; then _start_registry || return 1; started+=("registry $SLIPWAY_TEST_REGISTRY (user $SLIPWAY_TEST_REGISTRY_USER)"); fi
  # The engine has no bridge: builds' RUN steps use the host network (slipway build and serve
  # read this; CodeBuild's engine has a bridge and leaves it empty).
  if _wanted engine; then export SLIPWAY_BUILD_NETWORK=host; fi
  # Static binaries for FROM-scratch test images (nothing can be pulled).
  export SLIPWAY_TEST_BUSYBOX=/usr/bin/busybox
  export SLIPWAY_TEST_BUSYBOX_ARM64=$SLIPWAY_ARM64_BUSYBOX
  export SLIPWAY_SERVICES_DIR
  printf 'services: %s\n' "${started[@]}"
}

services_stop() {
  for s in registry moto dockerd; do
    local pid_file="$SLIPWAY_SERVICES_DIR/$s.pid"
    if [ -s "$pid_file" ]; then
      local pid; pid=$(cat "$pid_file")
      kill "$pid" 2>/dev/null || true
      # dockerd stops its containers first; wait so that a following start finds the socket gone.
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      rm -f "$pid_file"
    fi
  done
}

case "${1:-}" in
  start) services_start ;;
  stop) services_stop ;;
  *) echo "usage: source tests/services.sh start | bash tests/services.sh stop" >&2; return 2 2>/dev/null || exit 2 ;;
esac
