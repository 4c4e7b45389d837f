#!/usr/bin/env bash
# The AMQP benchmark: bench/c-baseline.c (librabbitmq, the broker's ceiling for this client shape)
# against Sources/AMQPBench (the same work through SwitchboardAMQP), on a throwaway node of its own.
# Rounds alternate which client goes first; the summary takes medians, because the machine is noisy.
# Results: bench-results/amqp.json, bench-results/amqp.md (and every run in amqp-runs.jsonl).
#
# Environment (defaults in brackets): BENCH_MESSAGES [200000] per run, BENCH_ROUNDS [3],
# BENCH_QUEUE_TYPES ["classic quorum"], SCRATCH_PATH [.build], BENCH_AMQP_PORT [5674].
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

messages=${BENCH_MESSAGES:-200000}
rounds=${BENCH_ROUNDS:-3}
queue_types=${BENCH_QUEUE_TYPES:-classic quorum}
scratch_path=${SCRATCH_PATH:-.build}
amqp_port=${BENCH_AMQP_PORT:-5674}
build_dir=$repo_root/bench/build
results_dir=$repo_root/bench-results

scripts/install-deps.sh
command -v swift >/dev/null || { echo "bench: swift is not on PATH" >&2; exit 1; }

mkdir -p "$build_dir" "$results_dir"
echo "bench: building the C baseline and the Swift bench (release)"
# shellcheck disable=SC2046 # pkg-config prints several flags
cc -O2 -Wall -Wextra -o "$build_dir/c-baseline" bench/c-baseline.c $(pkg-config --cflags --libs librabbitmq) -lpthread
scripts/swift.sh build --scratch-path "$scratch_path" -c release --product AMQPBench
swift_bench=$(scripts/swift.sh build --scratch-path "$scratch_path" -c release --show-bin-path)/AMQPBench

export SB_NODE_NAME=switchboard-bench@localhost
export SB_AMQP_PORT=$amqp_port
export SB_DIST_PORT=$((amqp_port + 20000))
export SB_PLUGINS=rabbitmq_management
export SB_MGMT_PORT=$((amqp_port + 10000))
SB_NODE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-bench.XXXXXX")
export SB_NODE_DIR
# Run as root, the node runs as the rabbitmq user, which must reach its folder.
chmod 755 "$SB_NODE_DIR"
cleanup() {
    scripts/rabbitmq-node.sh wipe >/dev/null || true
}
trap cleanup EXIT
scripts/rabbitmq-node.sh start
broker_version=$(scripts/rabbitmq-node.sh ctl version)
url="amqp://switchboard:switchboard@127.0.0.1:$amqp_port/switchboard"

runs_file=$results_dir/amqp-runs.jsonl
: >"$runs_file"
run_client() {
    local client=$1 queue_type=$2 round=$3 record
    local queue=bench.$client.$queue_type.$round
    local options=(--url "$url" --queue "$queue" --queue-type "$queue_type" --messages "$messages")
    case $client in
        c) record=$("$build_dir/c-baseline" "${options[@]}") ;;
        swift) record=$("$swift_bench" measure "${options[@]}") ;;
    esac
    echo "${record/#\{/\{\"round\":$round,}" >>"$runs_file"
    echo "bench: round $round $queue_type $client: $record"
    # An empty queue left behind would still cost the broker a little in later runs.
    scripts/rabbitmq-node.sh ctl delete_queue -p switchboard "$queue" >/dev/null
}

for ((round = 1; round <= rounds; round++)); do
    for queue_type in $queue_types; do
        if ((round % 2)); then order=(c swift); else order=(swift c); fi
        for client in "${order[@]}"; do run_client "$client" "$queue_type" "$round"; done
    done
done

"$swift_bench" summarize --runs "$runs_file" --json "$results_dir/amqp.json" \
    --markdown "$results_dir/amqp.md" --broker-version "$broker_version"
cat "$results_dir/amqp.md"
