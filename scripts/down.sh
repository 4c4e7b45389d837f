#!/usr/bin/env bash
# Stops what scripts/up.sh started: the gateway and each service with SIGTERM (graceful: the gateway
# closes its pages, a service finishes its batch and snapshots), through its supervisor so that it is
# not started again, SIGKILL if it is still there after DOWN_STOP_TIMEOUT [20] seconds; then the local node.
#
#   scripts/down.sh [SERVICE...]   only these (router, notifier, closer, gateway), and not the node
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
# shellcheck source=scripts/service-processes.sh
. "$repo_root/scripts/service-processes.sh"
stop_timeout=${DOWN_STOP_TIMEOUT:-20}

say() { echo "down: $*"; }

services=("$@")
((${#services[@]})) || services=(gateway closer notifier router)
for service in "${services[@]}"; do
    [[ $service =~ ^(gateway|closer|notifier|router)$ ]] || { echo "down: no service $service" >&2; exit 2; }
    # The supervisor first, so that it does not start the service again: it passes SIGTERM on.
    supervisor_file=$run_dir/$service.supervisor.pid
    if supervisor=$(supervisor_pid "$service"); then kill -TERM "$supervisor" 2>/dev/null || true; fi
    pid_file=$run_dir/$service.pid
    [[ -s $pid_file ]] || { rm -f "$supervisor_file"; continue; }
    pid=$(<"$pid_file")
    if runs_service "$pid" "$service"; then
        [[ -n $supervisor ]] || kill -TERM "$pid" 2>/dev/null || true
        deadline=$((SECONDS + stop_timeout))
        while runs_service "$pid" "$service" && ((SECONDS < deadline)); do sleep 0.2; done
        if runs_service "$pid" "$service"; then
            kill -KILL "$pid" 2>/dev/null || true
            say "switchboard-$service (pid $pid) did not stop within ${stop_timeout}s: killed"
        else
            say "switchboard-$service stopped"
        fi
    elif [[ -n $supervisor ]]; then
        say "switchboard-$service stopped"
    fi
    if [[ -n $supervisor ]]; then
        deadline=$((SECONDS + stop_timeout))
        while runs_supervisor "$supervisor" "$service" && ((SECONDS < deadline)); do sleep 0.1; done
        if runs_supervisor "$supervisor" "$service"; then
            kill -KILL "$supervisor" 2>/dev/null || true
            pid=$(<"$pid_file")
            if runs_service "$pid" "$service"; then kill -KILL "$pid" 2>/dev/null || true; fi
            say "the supervisor of switchboard-$service (pid $supervisor) did not stop within ${stop_timeout}s: killed"
        fi
    fi
    rm -f "$pid_file" "$supervisor_file" "$run_dir/$service.launch"
done
(($#)) || scripts/rabbitmq-node.sh stop
