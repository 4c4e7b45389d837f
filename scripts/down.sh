#!/usr/bin/env bash
# Stops what scripts/up.sh started: the gateway and each service with SIGTERM (graceful: the gateway
# signs its agents off, a service finishes its batch and snapshots), SIGKILL if it is still there after
# DOWN_STOP_TIMEOUT [20] seconds; then the local node.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
run_dir=$repo_root/var/run
stop_timeout=${DOWN_STOP_TIMEOUT:-20}

say() { echo "down: $*"; }

# True while `pid` still runs the service's executable (a recycled pid is someone else's).
runs_service() { [[ -r /proc/$1/cmdline ]] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -q "switchboard-$2"; }

for service in gateway closer notifier router; do
    pid_file=$run_dir/$service.pid
    [[ -s $pid_file ]] || continue
    pid=$(<"$pid_file")
    if runs_service "$pid" "$service"; then
        kill -TERM "$pid"
        deadline=$((SECONDS + stop_timeout))
        while runs_service "$pid" "$service" && ((SECONDS < deadline)); do sleep 0.2; done
        if runs_service "$pid" "$service"; then
            kill -KILL "$pid"
            say "switchboard-$service (pid $pid) did not stop within ${stop_timeout}s: killed"
        else
            say "switchboard-$service stopped"
        fi
    fi
    rm -f "$pid_file"
done
scripts/rabbitmq-node.sh stop
