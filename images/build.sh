#!/usr/bin/env bash
# Build the htl images with podman (or ENGINE=docker): images/build.sh [cpu|cuda|all]
#
#   REGISTRY   image prefix                 (default: localhost, podman's local prefix)
#   TAG        image tag                    (default: the git SHA, "-dirty" if uncommitted)
#   BASE       base of both flavours        (default: a Debian bookworm base made here with
#                                            debootstrap, for machines that cannot pull; set
#                                            BASE=python:3.11-slim-bookworm where one can)
#   CUDA_BASE  base of the cuda flavour     (default: BASE; torch's wheels carry CUDA)
#   TORCH_CPU_INDEX  where the CPU torch wheel comes from when no local copy exists
#   PIP_CA     CA bundle for pip behind a TLS proxy (default: the host's, if pip uses one)
# Prints the image references it built, one per line, on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

ENGINE=${ENGINE:-podman}
REGISTRY=${REGISTRY:-localhost}
TAG=${TAG:-$(git rev-parse --short=12 HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo -dirty)}
LOCAL_BASE=localhost/htl-base:bookworm
BASE=${BASE:-$LOCAL_BASE}
CUDA_BASE=${CUDA_BASE:-$BASE}
TORCH_CPU_INDEX=${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}
PIP=${PIP:-.venv/bin/pip}
TORCH=$(sed -n 's/^torch==//p' constraints.txt)
PIP_CA=${PIP_CA:-${PIP_CERT:-}}
FLAVORS=${1:-all}; [ "$FLAVORS" = all ] && FLAVORS="cpu cuda"

log() { echo "images: $*" >&2; }

has_image() { "$ENGINE" image exists "$1" 2>/dev/null || "$ENGINE" image inspect "$1" >/dev/null 2>&1; }

local_base() {  # Debian bookworm + python3 from a rootfs: no registry needed
  has_image "$LOCAL_BASE" && return
  local rootfs=build/images/rootfs
  log "making $LOCAL_BASE with debootstrap (about a minute)"
  rm -rf "$rootfs" && mkdir -p "$rootfs"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$rootfs" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >&2
  tar -C "$rootfs" -c . | "$ENGINE" import - "$LOCAL_BASE" >&2
  rm -rf "$rootfs"
}

wheels() {  # .whl/cpu: torch's CPU wheel (a local copy if pip finds one, else TORCH_CPU_INDEX)
  mkdir -p .whl/cpu .whl/cuda
  ls .whl/cpu/torch-"$TORCH"+cpu-*.whl >/dev/null 2>&1 && return
  "$PIP" download --quiet --no-deps -d .whl/cpu "torch==$TORCH+cpu" 2>/dev/null \
    || "$PIP" download --quiet --no-deps -d .whl/cpu --index-url "$TORCH_CPU_INDEX" "torch==$TORCH+cpu"
}

build() {  # flavor base torch_index
  local ref="$REGISTRY/htl-$1:$TAG" args=()
  if [[ $TAG != *-dirty ]] && has_image "$ref"; then  # a clean tree's image is what it built
    log "$ref is built"; echo "$ref"; return
  fi
  [ "$ENGINE" = podman ] && args+=(--isolation chroot)  # no OCI runtime needed for RUN
  [ -n "$PIP_CA" ] && [ -f "$PIP_CA" ] && args+=(--secret "id=pipca,src=$PIP_CA")
  log "building $ref on $2"
  local start=$SECONDS
  "$ENGINE" build "${args[@]}" -f images/Dockerfile -t "$ref" \
    --build-arg BASE="$2" --build-arg FLAVOR="$1" --build-arg TORCH_INDEX="$3" \
    --build-arg GIT_SHA="$(git rev-parse HEAD)" . >&2
  log "built $ref in $((SECONDS - start)) s"
  echo "$ref"
}

wheels
for flavor in $FLAVORS; do
  case $flavor in
    cpu)  [ "$BASE" = "$LOCAL_BASE" ] && local_base; build cpu "$BASE" "" ;;
    cuda) [ "$CUDA_BASE" = "$LOCAL_BASE" ] && local_base; build cuda "$CUDA_BASE" "" ;;
    *) log "unknown flavour '$flavor' (cpu, cuda or all)"; exit 2 ;;
  esac
done
