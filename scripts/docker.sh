#!/usr/bin/env bash
# Makes a Docker engine available and builds assay's runner images:
# installs docker.io and debootstrap if missing, starts dockerd if it is not
# answering, builds the debootstrap base image, then the runner images through
# assay's own `images build` (bollard). Needs root.
# Usage: docker.sh ASSAY_BIN; docker.sh --base for the engine and base image only;
# docker.sh --cli for the runner images built by the docker client from the same
# Dockerfiles and BASE argument, which needs no assay binary, so the tests build
# the images while cargo compiles (tests/it/sandbox.rs checks that `assay images
# build` then finds every layer in the cache).
set -euo pipefail
cd "$(dirname "$0")/.."
assay=${1:?usage: docker.sh PATH_TO_ASSAY_BINARY | --base | --cli}

need=()
# e2fsprogs and util-linux: each sandbox job's /work is an ext4 image on a loop device.
for pkg in docker.io debootstrap e2fsprogs util-linux; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "docker: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  echo "docker: starting dockerd"
  nohup dockerd >/var/log/assay-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { echo "docker: dockerd did not start; see /var/log/assay-dockerd.log" >&2; exit 1; }
fi

bash docker/make-base.sh assay-base:bookworm
[ "$assay" = --base ] && exit 0
# The runners' images, and the install phase's proxy (assay-proxy).
for runner in python rust node go proxy; do
  image="assay-runner-$runner"
  [ "$runner" = proxy ] && image=assay-proxy
  if docker image inspect "$image" >/dev/null 2>&1 && [ "${FORCE:-0}" != 1 ]; then
    echo "docker: $image exists (FORCE=1 to rebuild)"
  else
    if [ "$assay" = --cli ]; then
      echo "docker: building $image from assay-base:bookworm"
      docker build -q --build-arg BASE=assay-base:bookworm -t "$image" - <"docker/$runner.Dockerfile"
    else
      "$assay" images build --base assay-base:bookworm --runner "$runner"
    fi
  fi
done
