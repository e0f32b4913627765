#!/usr/bin/env bash
# Builds the base image for the runner images on a host with no image
# registry: a minimal Debian bookworm made with debootstrap from Debian's
# packages, imported with `docker import`. Usage: make-base.sh [TAG]
# (default assay-base:bookworm). Needs root, debootstrap and a Docker engine.
set -euo pipefail
tag=${1:-assay-base:bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

if docker image inspect "$tag" >/dev/null 2>&1 && [ "${FORCE:-0}" != 1 ]; then
  echo "make-base: $tag exists (FORCE=1 to rebuild)"
  exit 0
fi
root=$(mktemp -d /tmp/assay-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=ca-certificates bookworm "$root" "$mirror" >/dev/null
# A debootstrap base lists only `bookworm main`; the runner images need
# bookworm-updates and bookworm-security (rustc-web 1.96 comes from there).
cat > "$root/etc/apt/sources.list" <<LIST
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
LIST
# Trust what this host trusts: behind a TLS-intercepting proxy the registries
# (PyPI, npm, crates.io) are only reachable with the host's extra CAs.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates >/dev/null
fi
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["/bin/bash"]' - "$tag" >/dev/null
echo "make-base: built $tag"
