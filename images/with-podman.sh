#!/usr/bin/env bash
# Run a command with DOCKER_HOST pointing at a container engine: the caller's, when DOCKER_HOST
# is set, else a podman API service started here (images/containers.conf) and stopped after.
#   images/with-podman.sh .venv/bin/htl run --config configs/demo.yaml --runner docker ...
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${DOCKER_HOST:-}" ]; then exec "$@"; fi

sock_dir=$(mktemp -d /tmp/htl-podman.XXXXXX)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/images/containers.conf}
podman system service --time=0 "unix://$sock_dir/podman.sock" &
service=$!
trap 'kill $service 2>/dev/null; wait $service 2>/dev/null; rm -rf "$sock_dir"' EXIT
for _ in $(seq 100); do [ -S "$sock_dir/podman.sock" ] && break; sleep 0.1; done
export DOCKER_HOST="unix://$sock_dir/podman.sock"
"$@"
