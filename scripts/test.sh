#!/bin/bash
# Sets everything up and runs berth's tests: type check, lint, unit tests, integration tests
# with the real parts (runc, conmon, overlayfs, the registry fixture), and the acceptance
# scenarios through the real docker CLI and through berth, against a berthd of its own.
# Usage: scripts/test.sh [unit|integration|acceptance|all]   (default all)
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
what=${1:-all}
bash scripts/setup.sh --no-daemon
NODE=node
[ -x /opt/berth/node/bin/node ] && [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 24 ] && NODE=/opt/berth/node/bin/node
export PATH=$(dirname "$(command -v $NODE)"):$PATH
shared=${BERTH_SHARED:-$here/../shared}
passed=0 failed=0 failures=()
step() { # step NAME CMD...
  local name=$1; shift
  echo "=== $name"
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$name"); fi
}

if [[ $what == all || $what == unit ]]; then
  step typecheck npx tsc --noEmit -p .
  step lint npm run -s lint
  step unit node --test --test-concurrency=2 --test-reporter=dot 'src/**/*.test.ts' 'test/unit/**/*.test.ts'
fi

TEST_ROOT=/var/tmp/berth-test
SOCK=/run/berth-test/berth.sock
berthd_pid=
registry_started=
cleanup() {
  if [ -n "$berthd_pid" ]; then
    # Remove what the tests left (through the docker CLI when it is there, else berth), then stop berthd.
    cli=berth; command -v docker >/dev/null && cli=docker
    DOCKER_HOST=unix://$SOCK timeout 60 bash -c "ids=\$($cli ps -aq 2>/dev/null); [ -n \"\$ids\" ] && $cli rm -f -v \$ids" >/dev/null 2>&1 || true
    kill "$berthd_pid" 2>/dev/null; wait "$berthd_pid" 2>/dev/null
    grep -o " $TEST_ROOT[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf /run/berth-test "$TEST_ROOT"
  fi
  [ -n "$registry_started" ] && bash "$shared/fixtures/registry.sh" stop >/dev/null 2>&1
  true
}
trap cleanup EXIT

if [[ $what == all || $what == integration || $what == acceptance ]]; then
  if ! bash "$shared/fixtures/registry.sh" status >/dev/null 2>&1; then registry_started=1; fi
  SEED_DEBIAN=${SEED_DEBIAN:-1} bash "$shared/fixtures/registry.sh" start || { echo "registry fixture failed"; exit 1; }
  mkdir -p $TEST_ROOT
  cat > $TEST_ROOT/daemon.json <<JSON
{ "registry-mirrors": ["http://127.0.0.1:5000"], "insecure-registries": ["127.0.0.1:5000", "localhost:5000"],
  "runtimes": { "runc-alt": { "path": "$(command -v runc)" } } }
JSON
  rm -f $SOCK
  setsid bin/berthd --config-file $TEST_ROOT/daemon.json --data-root $TEST_ROOT/root --exec-root /run/berth-test -H unix://$SOCK >$TEST_ROOT/berthd.log 2>&1 < /dev/null &
  berthd_pid=$!
  for _ in $(seq 100); do [ -S $SOCK ] && break; sleep 0.1; done
  [ -S $SOCK ] || { echo "test berthd did not start:"; tail -20 $TEST_ROOT/berthd.log; exit 1; }
  export BERTH_TEST_SOCKET=$SOCK BERTH_TEST_REGISTRY=127.0.0.1:5000
fi

if [[ $what == all || $what == integration ]]; then
  step integration node --test --test-concurrency=1 --test-reporter=dot 'test/integration/**/*.test.ts' 'test/e2e/**/*.test.ts'
fi

if [[ $what == all || $what == acceptance ]]; then
  scen=${BERTH_ACCEPTANCE:-'^(01|02|04|06|07|08|09|10|11|13|14|15|16|18|23)-'}
  for client in docker berth; do
    out=$(mktemp)
    if [ $client = docker ]; then
      DOCKER_HOST=unix://$SOCK D=docker COMPOSE=docker-compose bash "$shared/acceptance/run.sh" "" "$scen" | tee "$out"
    else
      DOCKER_HOST=unix://$SOCK D=berth COMPOSE="berth compose" bash "$shared/acceptance/run.sh" "" "$scen" | tee "$out"
    fi
    if grep -q '^FAIL' "$out" || ! grep -q ' passed, 0 failed' "$out"; then
      failed=$((failed + 1)); failures+=("acceptance($client)")
      for l in $(grep -o 'logs: .*' "$out" | cut -d' ' -f2); do tail -n 30 "$l"/*.log 2>/dev/null | head -100; done
    else passed=$((passed + 1)); fi
    rm -f "$out"
  done
fi

echo
((failed)) && echo "failed steps: ${failures[*]}"
echo "$passed passed, $failed failed"
((failed == 0))
