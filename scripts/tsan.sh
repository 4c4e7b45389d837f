#!/usr/bin/env bash
# The AMQP layer under the thread sanitizer: builds AMQPStress with --sanitize=thread (its own scratch
# path, so the normal build is untouched), starts a throwaway node under SWITCHBOARD_TEST_ROOT (stopped by
# scripts/test.sh) and runs many concurrent publishers against it. Fails on any race report.
# Usage: scripts/tsan.sh [--scratch-path PATH]
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
scratch_path=.build
if [[ ${1:-} == --scratch-path ]]; then scratch_path=$2; fi
scratch_path=${scratch_path%/}-tsan

: "${SWITCHBOARD_TEST_ROOT:?run through scripts/test.sh, which makes and cleans up SWITCHBOARD_TEST_ROOT}"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
export SB_NODE_NAME="sbtsan-$$@localhost" SB_NODE_DIR="$SWITCHBOARD_TEST_ROOT/node-tsan-$$"
export SB_AMQP_PORT=$(free_port) SB_DIST_PORT=$(free_port) SB_MGMT_PORT=$(free_port) SB_PROMETHEUS_PORT=$(free_port)
export SB_PLUGINS=rabbitmq_consistent_hash_exchange

echo "tsan: building AMQPStress with the thread sanitizer"
"$repo_root/scripts/swift.sh" build --scratch-path "$scratch_path" --sanitize=thread --product AMQPStress
"$repo_root/scripts/rabbitmq-node.sh" start >/dev/null
trap '"$repo_root/scripts/rabbitmq-node.sh" stop >/dev/null 2>&1 || true' EXIT

SWITCHBOARD_AMQP_URL="amqp://switchboard:switchboard@127.0.0.1:$SB_AMQP_PORT/switchboard" \
TSAN_OPTIONS="halt_on_error=1 exitcode=66 suppressions=$repo_root/scripts/tsan.supp" \
    "$("$repo_root/scripts/swift.sh" build --scratch-path "$scratch_path" --sanitize=thread --show-bin-path)/AMQPStress"
