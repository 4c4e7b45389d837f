# Sourced by scripts/up.sh and scripts/down.sh: where `make up` keeps its services' pids, and how to tell
# that a pid still is what its file says (a recycled pid is someone else's). Needs `repo_root`.
run_dir=$repo_root/var/run

# True while `pid` runs a command line holding `pattern` (quiet when the process ends under it).
runs() { [[ -r /proc/$1/cmdline ]] && { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null | grep -q "$2"; }

# True while `pid` runs the service's executable as started by this clone's `make up` (its supervisor hands
# on SB_RUN_DIR): a pid recycled by another run of the same executable, a test's say, is not ours.
runs_service() {
    runs "$1" "switchboard-$2" \
        && { tr '\0' '\n' <"/proc/$1/environ"; } 2>/dev/null | grep -qxF "SB_RUN_DIR=$run_dir"
}

# True while `pid` is the service's supervisor (scripts/supervise.sh).
runs_supervisor() { runs "$1" "supervise.sh $run_dir/$2.pid"; }

# The service's pid, and its supervisor's, from their files, if each still runs.
running_pid() { live_pid "$run_dir/$1.pid" runs_service "$1"; }
supervisor_pid() { live_pid "$run_dir/$1.supervisor.pid" runs_supervisor "$1"; }

# Prints the pid in `pid_file` if `check pid service` holds for it.
live_pid() {
    local pid_file=$1 check=$2 service=$3 pid
    [[ -s $pid_file ]] || return 1
    pid=$(<"$pid_file")
    "$check" "$pid" "$service" || return 1
    echo "$pid"
}
