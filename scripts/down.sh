#!/usr/bin/env bash
# Stops what scripts/up.sh started: the gateway and each service with SIGTERM (graceful: the gateway
# signs its agents off, a service finishes its batch and snapshots), through its supervisor so that it is
# not started again, SIGKILL if it is still there after DOWN_STOP_TIMEOUT [20] seconds; then the local node.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
run_dir=$repo_root/var/run
stop_timeout=${DOWN_STOP_TIMEOUT:-20}

say() { echo "down: $*"; }

# True while `pid` still runs the service's executable (a recycled pid is someone else's).
runs_service() { runs "$1" "switchboard-$2"; }

# True while `pid` is the service's supervisor (scripts/supervise.sh).
runs_supervisor() { runs "$1" "supervise.sh $run_dir/$2.pid"; }

# True while `pid` runs a command line holding `pattern` (quiet when the process ends under it).
runs() { [[ -r /proc/$1/cmdline ]] && { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null | grep -q "$2"; }

for service in gateway closer notifier router; do
    # The supervisor first, so that it does not start the service again: it passes SIGTERM on.
    supervisor_file=$run_dir/$service.supervisor.pid
    supervisor=
    if [[ -s $supervisor_file ]] && runs_supervisor "$(<"$supervisor_file")" "$service"; then
        supervisor=$(<"$supervisor_file")
        kill -TERM "$supervisor"
    fi
    pid_file=$run_dir/$service.pid
    [[ -s $pid_file ]] || { rm -f "$supervisor_file"; continue; }
    pid=$(<"$pid_file")
    if runs_service "$pid" "$service"; then
        [[ -n $supervisor ]] || kill -TERM "$pid"
        deadline=$((SECONDS + stop_timeout))
        while runs_service "$pid" "$service" && ((SECONDS < deadline)); do sleep 0.2; done
        if runs_service "$pid" "$service"; then
            kill -KILL "$pid"
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
            kill -KILL "$supervisor"
            pid=$(<"$pid_file")
            if runs_service "$pid" "$service"; then kill -KILL "$pid"; fi
            say "the supervisor of switchboard-$service (pid $supervisor) did not stop within ${stop_timeout}s: killed"
        fi
    fi
    rm -f "$pid_file" "$supervisor_file"
done
scripts/rabbitmq-node.sh stop
