#!/usr/bin/env bash
# Starts (or stops) the real services the tests use, all on 127.0.0.1:
#   moto server (SQS, SNS, SSM, EventBridge)    SLIPWAY_TEST_MOTO_URL
#   Docker engine, host network only            /var/run/docker.sock
#   docker-registry with htpasswd auth          SLIPWAY_TEST_REGISTRY, SLIPWAY_TEST_REGISTRY_USER/_PASSWORD
# `source tests/services.sh start` exports the variables; `bash tests/services.sh stop` ends them.
set -uo pipefail

SLIPWAY_SERVICES_DIR=${SLIPWAY_SERVICES_DIR:-/tmp/slipway-services}
VENV=${SLIPWAY_VENV:-/opt/slipway-venv}
MOTO_PORT=${SLIPWAY_MOTO_PORT:-5055}
REGISTRY_PORT=${SLIPWAY_REGISTRY_PORT:-5056}

_wait_for() { # name, seconds, command...
  local name=$1 secs=$2; shift 2
  for _ in $(seq 1 $((secs * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "services: $name did not come up in ${secs}s; see $SLIPWAY_SERVICES_DIR/$name.log" >&2
  tail -20 "$SLIPWAY_SERVICES_DIR/$name.log" >&2 2>/dev/null
  return 1
}

services_start() {
  mkdir -p "$SLIPWAY_SERVICES_DIR"
  # moto
  if ! curl -fsS "http://127.0.0.1:$MOTO_PORT/moto-api/" >/dev/null 2>&1; then
    nohup "$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$SLIPWAY_SERVICES_DIR/moto.log" 2>&1 &
    echo $! >"$SLIPWAY_SERVICES_DIR/moto.pid"
    _wait_for moto 30 curl -fsS "http://127.0.0.1:$MOTO_PORT/moto-api/" || return 1
  fi
  # Docker engine: no bridge, no iptables; containers use the host network.
  if ! docker info >/dev/null 2>&1; then
    nohup dockerd --bridge=none --iptables=false --ip6tables=false >"$SLIPWAY_SERVICES_DIR/dockerd.log" 2>&1 &
    echo $! >"$SLIPWAY_SERVICES_DIR/dockerd.pid"
    _wait_for dockerd 60 docker info || return 1
  fi
  # Registry with htpasswd (bcrypt) auth.
  local user=slipway pass_file="$SLIPWAY_SERVICES_DIR/registry.password"
  [ -s "$pass_file" ] || head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$pass_file"
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
  export SLIPWAY_TEST_MOTO_URL="http://127.0.0.1:$MOTO_PORT"
  export SLIPWAY_TEST_REGISTRY="127.0.0.1:$REGISTRY_PORT"
  export SLIPWAY_TEST_REGISTRY_USER=$user
  export SLIPWAY_TEST_REGISTRY_PASSWORD_FILE=$pass_file
  export SLIPWAY_TEST_BUSYBOX=/usr/bin/busybox
  # moto accepts any credentials; the SDK still wants some.
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
  echo "services: moto $SLIPWAY_TEST_MOTO_URL, docker engine, registry $SLIPWAY_TEST_REGISTRY (user $user)"
}

services_stop() {
  for s in registry moto dockerd; do
    local pid_file="$SLIPWAY_SERVICES_DIR/$s.pid"
    if [ -s "$pid_file" ]; then
      kill "$(cat "$pid_file")" 2>/dev/null || true
      rm -f "$pid_file"
    fi
  done
}

case "${1:-}" in
  start) services_start ;;
  stop) services_stop ;;
  *) echo "usage: source tests/services.sh start | bash tests/services.sh stop" >&2; return 2 2>/dev/null || exit 2 ;;
esac
