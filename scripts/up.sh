#!/usr/bin/env bash
# Starts everything `make run` needs: the local RabbitMQ node, then switchboard-router, -notifier and
# -closer (release builds) in the background, and waits until each reports ready. Idempotent: what
# already runs is left alone.
#
# Logs go to var/log/<service>.log, pids to var/run/<service>.pid (both git-ignored).
# Environment: SCRATCH_PATH [.build] build folder; UP_READY_TIMEOUT [180] seconds per service;
# SWITCHBOARD_* settings are passed on to the services (e.g. SWITCHBOARD_AMQP_URL).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
scratch_path=${SCRATCH_PATH:-.build}
ready_timeout=${UP_READY_TIMEOUT:-180}
log_dir=$repo_root/var/log
run_dir=$repo_root/var/run

# service name and the port of its health server (the services' defaults).
services=(router:9101 notifier:9102 closer:9103)
products=(switchboard-router switchboard-notifier switchboard-closer switchboard switchboard-demo)

say() { echo "up: $*"; }
die() { echo "up: $*" >&2; exit 1; }

# A pid file names a running service only if that pid still runs that executable.
running_pid() {
    local pid_file=$run_dir/$1.pid pid
    [[ -s $pid_file ]] || return 1
    pid=$(<"$pid_file")
    [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "switchboard-$1" || return 1
    echo "$pid"
}

is_ready() { curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$1/health/ready"; }

scripts/install-deps.sh
scripts/rabbitmq-node.sh start

mkdir -p "$log_dir" "$run_dir"
say "building ${products[*]} (release, in $scratch_path; output in $log_dir/build.log)"
: >"$log_dir/build.log"
for product in "${products[@]}"; do
    if ! swift build -c release --scratch-path "$scratch_path" --product "$product" >>"$log_dir/build.log" 2>&1; then
        tail -n 30 "$log_dir/build.log" >&2
        die "building $product failed; the end of $log_dir/build.log is above"
    fi
done
bin_dir=$(swift build -c release --scratch-path "$scratch_path" --show-bin-path)
# The Router takes agent commands from the demo's broker user and the gateway's (its default: the gateway's alone).
export SWITCHBOARD_ROUTER_AGENT_COMMAND_USERS=${SWITCHBOARD_ROUTER_AGENT_COMMAND_USERS:-switchboard:*,switchboard-gateway:*}

for entry in "${services[@]}"; do
    service=${entry%%:*}
    port=${entry##*:}
    if pid=$(running_pid "$service"); then
        say "switchboard-$service already running (pid $pid)"
        continue
    fi
    # A new session: Ctrl-C on the demo in the foreground must not reach the services.
    setsid "$bin_dir/switchboard-$service" --http-port "$port" --instance-name "local-$service" \
        </dev/null >>"$log_dir/$service.log" 2>&1 &
    echo $! >"$run_dir/$service.pid"
    say "started switchboard-$service (pid $!, health http://127.0.0.1:$port/health/ready)"
done

for entry in "${services[@]}"; do
    service=${entry%%:*}
    port=${entry##*:}
    deadline=$((SECONDS + ready_timeout))
    until is_ready "$port"; do
        if ! running_pid "$service" >/dev/null; then
            tail -n 30 "$log_dir/$service.log" >&2 || true
            die "switchboard-$service exited; the end of $log_dir/$service.log is above"
        fi
        if ((SECONDS >= deadline)); then
            tail -n 30 "$log_dir/$service.log" >&2 || true
            die "switchboard-$service not ready after ${ready_timeout}s; the end of $log_dir/$service.log is above"
        fi
        sleep 0.5
    done
    say "switchboard-$service ready"
done
say "all running. Logs: $log_dir/{router,notifier,closer}.log; stop with: make down"
