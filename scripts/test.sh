#!/usr/bin/env bash
# Runs `swift test` (with the arguments given) with a throwaway SWITCHBOARD_TEST_ROOT. Tests that
# need a broker start their own nodes under that root with scripts/rabbitmq-node.sh; every one of
# them is stopped, and the root removed, when this script exits, however it exits. Then the system suite
# (tests/system/run.sh) runs against the services as processes, and the browser suite (tests/browser/run.sh)
# drives the gateway's agent page in headless Chromium; every result decides the exit status.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

"$repo_root/scripts/install-deps.sh"
command -v swift >/dev/null || { echo "test: swift is not on PATH" >&2; exit 1; }

SWITCHBOARD_TEST_ROOT=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-test.XXXXXX")
export SWITCHBOARD_TEST_ROOT
# Run as root, nodes run as the rabbitmq user, which must reach their folders under the root.
chmod 755 "$SWITCHBOARD_TEST_ROOT"
# Every temporary file of the run goes under the root too, and with it: whatever a test, a tool or a browser
# started by one leaves behind (a test killed by its timeout cannot remove its own).
mkdir -m 1777 "$SWITCHBOARD_TEST_ROOT/tmp"
export TMPDIR=$SWITCHBOARD_TEST_ROOT/tmp

stop_node() {
    local node_dir=$1 pid
    SB_NODE_NAME=$(<"$node_dir/node-name") SB_NODE_DIR=$node_dir \
        "$repo_root/scripts/rabbitmq-node.sh" stop >/dev/null 2>&1 || true
    # A node that no longer answers rabbitmqctl (hung, cookie gone) still has to go; the pid
    # file may be stale, so the process must prove it is that node.
    if [[ -s $node_dir/rabbitmq.pid ]]; then
        pid=$(<"$node_dir/rabbitmq.pid")
        if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "RABBITMQ_NODENAME=$(<"$node_dir/node-name")"; then
            kill -KILL "$pid"
        fi
    fi
}

cleanup() {
    local status=$? node_name_file
    while IFS= read -r -d '' node_name_file; do
        stop_node "$(dirname "$node_name_file")" &
    done < <(find "$SWITCHBOARD_TEST_ROOT" -name node-name -type f -print0)
    wait
    rm -rf "$SWITCHBOARD_TEST_ROOT"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A hung test must not hang CI: each run gets a bound (SWITCHBOARD_TEST_TIMEOUT seconds).
swift_test() { timeout --kill-after=30 "${SWITCHBOARD_TEST_TIMEOUT:-3600}" scripts/swift.sh test "$@"; }
# The pure suites (cores, contract, properties, simulations) keep every thread of Swift's task pool busy for
# as long as they run (20 s alone, 90 s in CI); beside them, the broker tests' tasks wait for a thread while
# their deadlines run out. So, unless the caller picks tests itself, they run first, on their own.
pure_suites=(SwitchboardCommonTests SwitchboardSimulationTests)
swift_status=0
if [[ " $* " == *" --filter"* || " $* " == *" --skip"* ]]; then
    swift_test "$@" || swift_status=$?
else
    swift_test "$@" "${pure_suites[@]/#/--filter=}" || swift_status=$?
    swift_test "$@" "${pure_suites[@]/#/--skip=}" || swift_status=$((swift_status ? swift_status : $?))
fi

# The system suite (tests/system) builds the services in the same scratch path and configuration.
build_options=()
while (($#)); do
    case $1 in
        --scratch-path | -c | --configuration) build_options+=("$1" "${2:?$1 needs a value}"); shift 2 ;;
        --scratch-path=* | --configuration=*) build_options+=("$1"); shift ;;
        *) shift ;;
    esac
done
system_status=0
timeout --kill-after=30 "${SWITCHBOARD_TEST_TIMEOUT:-3600}" "$repo_root/tests/system/run.sh" "${build_options[@]}" \
    || system_status=$?

# The browser suite (tests/browser) builds the services and the gateway in the same scratch path and configuration.
browser_status=0
timeout --kill-after=30 "${SWITCHBOARD_TEST_TIMEOUT:-3600}" "$repo_root/tests/browser/run.sh" "${build_options[@]}" \
    || browser_status=$?

# Many concurrent publishers under the thread sanitizer (a build of its own, in <scratch path>-tsan).
scratch_options=()
for ((i = 0; i < ${#build_options[@]}; i++)); do
    [[ ${build_options[i]} == --scratch-path ]] && scratch_options=(--scratch-path "${build_options[i + 1]}")
done
tsan_status=0
timeout --kill-after=30 "${SWITCHBOARD_TEST_TIMEOUT:-3600}" "$repo_root/scripts/tsan.sh" "${scratch_options[@]}" \
    || tsan_status=$?

echo "test: swift test exited with $swift_status, the system suite with $system_status," \
    "the browser suite with $browser_status, the thread sanitizer run with $tsan_status"
((swift_status == 0 && system_status == 0 && browser_status == 0 && tsan_status == 0))
