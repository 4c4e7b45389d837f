#!/usr/bin/env bash
# Runs a command and starts it again whenever it fails, as the systemd units in deploy/ do
# (Restart=on-failure, RestartSec=2s, RestartPreventExitStatus=2): after a non-zero exit status or a
# signal, but not after exit 0 (a graceful stop) or 2 (a configuration the process refused).
# SIGTERM or SIGINT stops the supervision: passed on to the command, which is waited for.
#
#   scripts/supervise.sh PID_FILE -- COMMAND [ARGUMENT...]
#
# PID_FILE always holds the pid of the command's current run. Environment: SUPERVISE_RESTART_SECONDS [2].
set -uo pipefail

[[ $# -ge 3 && $2 == -- ]] || { echo "usage: $0 PID_FILE -- COMMAND [ARGUMENT...]" >&2; exit 2; }
pid_file=$1
shift 2
restart_seconds=${SUPERVISE_RESTART_SECONDS:-2}

child=
stopping=0
stop() {
    stopping=1
    if [[ -n $child ]]; then kill -TERM "$child" 2>/dev/null; fi
}
trap stop TERM INT

say() { echo "supervise: $(date -u +%Y-%m-%dT%H:%M:%SZ) $*" >&2; }

while :; do
    "$@" &
    child=$!
    echo "$child" >"$pid_file"
    # A signal taken while the command was being started found no child to pass it on to.
    if ((stopping)); then kill -TERM "$child" 2>/dev/null; fi
    # A trapped signal ends `wait` early; the command's own status comes once it has ended.
    while kill -0 "$child" 2>/dev/null; do wait "$child"; done
    wait "$child"
    status=$?
    child=
    if ((stopping || status == 0 || status == 2)); then exit "$status"; fi
    say "$1 (pid $(<"$pid_file")) exited with status $status; starting it again in ${restart_seconds}s"
    sleep "$restart_seconds" &
    pause=$!
    wait "$pause"
    if ((stopping)); then
        kill "$pause" 2>/dev/null
        exit "$status"
    fi
done
