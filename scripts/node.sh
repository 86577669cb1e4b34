#!/bin/bash
# Runs Node.js 24 (set-up installs it in /opt/berth/node when the machine's Node is older).
for n in /opt/berth/node/bin/node /opt/node24/bin/node; do [ -x "$n" ] && exec "$n" --disable-warning=ExperimentalWarning "$@"; done
exec node "$@"
