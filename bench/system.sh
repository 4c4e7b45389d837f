#!/usr/bin/env bash
# The system benchmark: switchboard-router, -notifier and -closer (release, one instance each, all
# shards) on a throwaway node of their own, driven by switchboard-loadbench (Sources/LoadBench), and
# the broker's ceiling measured on the same node in the same run with bench/c-baseline.c (quorum queue,
# persistent bodies of the system's mean message size, confirm window 256, prefetch 256). It also reads
# the CPU time of the broker, the services and the load generator in the closed-loop phase, and the
# broker's in the ceiling run, to show how the machine's cores were shared. Beside the trickle and the 25%
# phase, c-baseline also sends one message at a time through request→ring's broker operations with no
# service code in them (Sources/LoadBench/BrokerProbe.swift): the broker's own latency under the same load,
# for one quorum-queue hop and for the whole chain.
# It runs all of that BENCH_SYSTEM_ROUNDS times, each round on a node of its own with the services started
# afresh, and judges each target on its median over the rounds: one run on this shared machine can differ
# from the next by half.
# Results: bench-results/system.json and bench-results/system.md (the targets per round, their medians and
# the median round in detail), and each round's own report in bench-results/system-round-N.{json,md};
# service logs and metrics stay in a temp folder that is printed (and kept) at the end.
#
# Environment (defaults in brackets): SCRATCH_PATH [.build], BENCH_SYSTEM_AMQP_PORT [5675],
# BENCH_SYSTEM_HTTP_PORT [19101] (first of three), BENCH_SYSTEM_SECONDS [20] per phase,
# BENCH_SYSTEM_SHARDS [1] shards per service (one instance of each service: on a 2-core machine more
# shards only make more, smaller batches competing for the same cores; 4 measured worse request→ring
# latency and no better throughput),
# BENCH_SYSTEM_CONCURRENCY [400] conversations in flight at the maximum (enough to saturate a 2-core
# machine), BENCH_CEILING_MESSAGES [100000] per ceiling attempt (the best of three attempts counts),
# BENCH_SYSTEM_ROUNDS [3] rounds of all of it.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

scratch_path=${SCRATCH_PATH:-.build}
amqp_port=${BENCH_SYSTEM_AMQP_PORT:-5675}
http_port=${BENCH_SYSTEM_HTTP_PORT:-19101}
phase_seconds=${BENCH_SYSTEM_SECONDS:-20}
shards=${BENCH_SYSTEM_SHARDS:-1}
concurrency=${BENCH_SYSTEM_CONCURRENCY:-400}
ceiling_messages=${BENCH_CEILING_MESSAGES:-100000}
rounds=${BENCH_SYSTEM_ROUNDS:-3}
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "bench/system: BENCH_SYSTEM_ROUNDS must be a positive whole number" >&2; exit 2; }
build_dir=$repo_root/bench/build
results_dir=$repo_root/bench-results
services=(router notifier closer)

say() { echo "bench/system: $*"; }

scripts/install-deps.sh
mkdir -p "$build_dir" "$results_dir"
rm -f "$results_dir"/system-round-*
say "building the C baseline and the services and load generator (release)"
# shellcheck disable=SC2046 # pkg-config prints several flags
cc -O2 -Wall -Wextra -o "$build_dir/c-baseline" bench/c-baseline.c $(pkg-config --cflags --libs librabbitmq) -lpthread
scripts/swift.sh build --scratch-path "$scratch_path" -c release
bin_dir=$(scripts/swift.sh build --scratch-path "$scratch_path" -c release --show-bin-path)

run_root=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-system-bench.XXXXXX")
# Run as root, the node runs as the rabbitmq user, which must reach its folder.
chmod 755 "$run_root"
export SB_NODE_NAME=switchboard-system-bench@localhost
export SB_AMQP_PORT=$amqp_port
export SB_DIST_PORT=$((amqp_port + 20000))
export SB_MGMT_PORT=$((amqp_port + 10000))
export SB_PROMETHEUS_PORT=$((amqp_port + 10020))
url="amqp://switchboard:switchboard@127.0.0.1:$amqp_port/switchboard"
# The load generator sends agent commands as the switchboard user.
export SWITCHBOARD_ROUTER_AGENT_COMMAND_USERS=switchboard:*

pids=()
stop_services() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=()
}
cleanup() {
    stop_services
    if [[ -n ${SB_NODE_DIR:-} ]]; then scripts/rabbitmq-node.sh wipe >/dev/null || true; fi
    say "service logs: $run_root/round-*/logs"
}
trap cleanup EXIT

# utime + stime of a process in clock ticks (fields 14 and 15; the command name before them may hold spaces).
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }

# One round: a node of its own, the services started afresh, the load, the broker's ceiling on the same
# node, and the round's report in $run_root/round-N/system.{json,md}.
run_round() {
    local round=$1
    local dir=$run_root/round-$round
    export SB_NODE_DIR=$dir/node
    mkdir -p "$SB_NODE_DIR" "$dir/logs"
    chmod 755 "$dir" "$SB_NODE_DIR"
    scripts/rabbitmq-node.sh start

    local metrics=() index service port deadline
    for index in "${!services[@]}"; do
        service=${services[$index]}
        port=$((http_port + index))
        "$bin_dir/switchboard-$service" --amqp-url "$url" --http-port "$port" --instance-name "bench-$service" \
            --shards-count "$shards" \
            </dev/null >"$dir/logs/$service.log" 2>&1 &
        pids+=($!)
        metrics+=("127.0.0.1:$port")
    done
    for index in "${!services[@]}"; do
        port=$((http_port + index))
        deadline=$((SECONDS + 180))
        until curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$port/health/ready"; do
            kill -0 "${pids[$index]}" 2>/dev/null || { tail -n 30 "$dir/logs/${services[$index]}.log" >&2; exit 1; }
            ((SECONDS < deadline)) || { say "switchboard-${services[$index]} not ready after 180 s" >&2; exit 1; }
            sleep 0.5
        done
    done
    say "round $round of $rounds: services ready; logs in $dir/logs"

    # The broker's and the services' CPU time, read by the load generator around the closed-loop phase.
    local broker_pid processes
    broker_pid=$(cat "$SB_NODE_DIR/rabbitmq.pid")
    processes="broker=$broker_pid"
    for index in "${!services[@]}"; do processes+=",${services[$index]}=${pids[$index]}"; done
    "$bin_dir/switchboard-loadbench" run --url "$url" --metrics "$(IFS=,; echo "${metrics[*]}")" \
        --out "$dir/load.json" --seconds "$phase_seconds" --concurrency "$concurrency" --processes "$processes" \
        --broker-probe "$build_dir/c-baseline"

    # The services' own metrics (per-stage batch timings among them), kept with the logs.
    for index in "${!services[@]}"; do
        curl -fsS --max-time 5 "http://${metrics[$index]}/metrics" >"$dir/logs/${services[$index]}.metrics" || true
    done

    # VmHWM is the peak resident set, VmRSS the current one.
    local status peak now
    {
        echo "["
        for index in "${!services[@]}"; do
            status=/proc/${pids[$index]}/status
            peak=$(awk '/^VmHWM:/ {print $2}' "$status")
            now=$(awk '/^VmRSS:/ {print $2}' "$status")
            ((index == 0)) || echo ","
            printf '{"service": "%s", "peakKilobytes": %d, "endKilobytes": %d}\n' "${services[$index]}" "$peak" "$now"
        done
        echo "]"
    } >"$dir/rss.json"

    local body_bytes best=0 ceiling_broker_cpu="" attempt ticks_before ticks_after rate
    body_bytes=$(sed -n 's/.*"meanBodyBytes" *: *\([0-9]*\).*/\1/p' "$dir/load.json")
    # The ceiling varies from attempt to attempt on a shared machine; the best of three is the one compared with.
    say "round $round of $rounds: broker ceiling: quorum queue, best of 3 attempts of $ceiling_messages persistent messages of $body_bytes bytes"
    for attempt in 1 2 3; do
        ticks_before=$(cpu_ticks "$broker_pid")
        "$build_dir/c-baseline" --url "$url" --queue bench.system.ceiling --queue-type quorum \
            --messages "$ceiling_messages" --body-bytes "$body_bytes" >"$dir/ceiling-$attempt.json"
        ticks_after=$(cpu_ticks "$broker_pid")
        cat "$dir/ceiling-$attempt.json"
        rate=$(sed -n 's/.*"messagesPerSecond" *: *\([0-9.]*\).*/\1/p' "$dir/ceiling-$attempt.json")
        if awk -v rate="$rate" -v best="$best" 'BEGIN { exit !(rate > best) }'; then
            best=$rate
            cp "$dir/ceiling-$attempt.json" "$dir/ceiling.json"
            ceiling_broker_cpu=$(awk -v ticks=$((ticks_after - ticks_before)) -v hz="$(getconf CLK_TCK)" \
                'BEGIN { printf "%.2f", ticks / hz }')
        fi
    done

    "$bin_dir/switchboard-loadbench" report --load "$dir/load.json" --ceiling "$dir/ceiling.json" \
        --rss "$dir/rss.json" --shards "$shards" --ceiling-broker-cpu "$ceiling_broker_cpu" \
        --json "$dir/system.json" --markdown "$dir/system.md"
    stop_services
    scripts/rabbitmq-node.sh wipe >/dev/null
    unset SB_NODE_DIR
    cp "$dir/system.json" "$results_dir/system-round-$round.json"
    cp "$dir/system.md" "$results_dir/system-round-$round.md"
}

reports=()
for round in $(seq 1 "$rounds"); do
    run_round "$round"
    reports+=("$run_root/round-$round/system.json")
done
"$bin_dir/switchboard-loadbench" summarize --reports "$(IFS=,; echo "${reports[*]}")" \
    --json "$results_dir/system.json" --markdown "$results_dir/system.md"
cat "$results_dir/system.md"
