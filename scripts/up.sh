#!/usr/bin/env bash
# Starts everything `make run` needs: the local RabbitMQ node, then switchboard-router, -notifier,
# -closer and -gateway (release builds) in the background, and waits until each reports ready. Each
# runs under scripts/supervise.sh, which starts it again when it fails, as the systemd units do.
# Idempotent: what already runs is left alone, unless it was started from another build or with other
# settings, which it is then restarted with. Prints the agent page's sign-in links.
#
# Logs go to var/log/<service>.log, pids to var/run/<service>.pid (the service's) and
# var/run/<service>.supervisor.pid (both git-ignored). The gateway's
# sign-in tokens are made once, at random, in var/gateway/tokens.json and kept across runs.
# Environment: SCRATCH_PATH [.build] build folder; UP_READY_TIMEOUT [180] seconds per service;
# GATEWAY_PORT [8080]; GATEWAY_AMQP_URL [the services' broker URL] e.g. with the switchboard-gateway user;
# SWITCHBOARD_* settings are passed on to the services (e.g. SWITCHBOARD_AMQP_URL).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
scratch_path=${SCRATCH_PATH:-.build}
ready_timeout=${UP_READY_TIMEOUT:-180}
log_dir=$repo_root/var/log
# shellcheck source=scripts/service-processes.sh
. "$repo_root/scripts/service-processes.sh"

gateway_port=${GATEWAY_PORT:-8080}
tokens_file=$repo_root/var/gateway/tokens.json

# service name and the port of its health server (the services' defaults).
services=(router:9101 notifier:9102 closer:9103 gateway:$gateway_port)
# The demo's agents that people play on the agent page (Sources/Demo/DemoRun.swift): desk:agent:name.
page_agents=(demo:frank:Frank auto:grace:Grace)

say() { echo "up: $*"; }
die() { echo "up: $*" >&2; exit 1; }

# Never through a proxy the environment may name for HTTP.
is_ready() { curl -fs -o /dev/null --noproxy '*' --max-time 2 "http://127.0.0.1:$1/health/ready"; }
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# Stops a service that does not get ready (its supervisor would start it again and again), prints the end of
# its log and fails.
give_up() {
    local service=$1 why=$2
    scripts/down.sh "$service" >/dev/null || true
    tail -n 30 "$log_dir/$service.log" >&2 || true
    die "switchboard-$service $why; the end of $log_dir/$service.log is above. It is stopped; what else runs" \
        "keeps running (make down stops it)"
}

# A port some other program holds would have the service fail to listen and be started again until the wait
# below ran out; say so at once.
refuse_taken_port() {
    local service=$1 port=$2 hint="stop it first"
    port_in_use "$port" || return 0
    [[ $service == gateway ]] && hint="stop it, or give the gateway another port: GATEWAY_PORT=8081 make up"
    die "port $port, switchboard-$service's, is taken by another program ($hint; \`ss -ltnp 'sport = :$port'\` names it)"
}

scripts/install-deps.sh

# Before anything starts.
for entry in "${services[@]}"; do
    service=${entry%%:*}
    port=${entry##*:}
    if ! supervisor_pid "$service" >/dev/null && ! running_pid "$service" >/dev/null; then
        refuse_taken_port "$service" "$port"
    fi
done

scripts/rabbitmq-node.sh start

mkdir -p "$log_dir" "$run_dir"
# The whole package in one build: SwiftPM plans for 6-7 s per `swift build` before it looks at a file, so a
# build per product cost that much for each one even with nothing to do.
say "building the services, the gateway, the ops CLI and the demo (release, in $scratch_path; output in $log_dir/build.log)"
if ! scripts/swift.sh build -c release --scratch-path "$scratch_path" >"$log_dir/build.log" 2>&1; then
    tail -n 30 "$log_dir/build.log" >&2
    die "the build failed; the end of $log_dir/build.log is above"
fi
bin_dir=$(scripts/swift.sh build -c release --scratch-path "$scratch_path" --show-bin-path)
# The Router takes agent commands from the demo's broker user (that of SWITCHBOARD_AMQP_URL, by default `switchboard`)
# and the gateway's (its default: the gateway's alone).
demo_user=switchboard
if [[ ${SWITCHBOARD_AMQP_URL:-} =~ ^amqps?://([^:@/]+)(:[^@/]*)?@ ]]; then demo_user=${BASH_REMATCH[1]}; fi
export SWITCHBOARD_ROUTER_AGENT_COMMAND_USERS=${SWITCHBOARD_ROUTER_AGENT_COMMAND_USERS:-$demo_user:*,switchboard-gateway:*}

# One random token per page agent, made once: a sign-in link keeps working across runs.
if [[ ! -s $tokens_file ]]; then
    mkdir -p "$(dirname "$tokens_file")"
    entries=()
    for entry in "${page_agents[@]}"; do
        IFS=: read -r desk agent name <<<"$entry"
        token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
        entries+=("{\"token\":\"$token\",\"desk\":\"$desk\",\"agent\":\"$agent\",\"name\":\"$name\"}")
    done
    (IFS=,; echo "{\"agents\":[${entries[*]}]}") >"$tokens_file.new"
    chmod 600 "$tokens_file.new"
    mv "$tokens_file.new" "$tokens_file"
    say "made sign-in tokens in $tokens_file"
fi

for entry in "${services[@]}"; do
    service=${entry%%:*}
    port=${entry##*:}
    options=(--http-port "$port" --instance-name "local-$service")
    if [[ $service == gateway ]]; then
        options+=(--tokens-file "$tokens_file")
        [[ -n ${GATEWAY_AMQP_URL:-} ]] && options+=(--amqp-url "$GATEWAY_AMQP_URL")
    fi
    # How it is started: a digest of its command line and the settings it reads from the environment (which may
    # hold a password, so not the text).
    launch=$({ printf '%s\n' "$bin_dir/switchboard-$service" "${options[@]}"; env | grep '^SWITCHBOARD_' | sort || true; } \
        | sha256sum | cut -d' ' -f1)
    if pid=$(supervisor_pid "$service") || pid=$(running_pid "$service"); then
        stale=
        if [[ $(cat "$run_dir/$service.launch" 2>/dev/null) != "$launch" ]]; then
            stale="its command line or SWITCHBOARD_ settings changed"
        elif service_pid=$(running_pid "$service") && [[ $(readlink "/proc/$service_pid/exe") == *" (deleted)" ]]; then
            stale="it was built again"
        fi
        if [[ -z $stale ]]; then
            say "switchboard-$service already running (pid $pid)"
            continue
        fi
        say "restarting switchboard-$service: $stale"
        scripts/down.sh "$service" >/dev/null
        refuse_taken_port "$service" "$port"
    fi
    # A new session: Ctrl-C on the demo in the foreground must not reach the services.
    rm -f "$run_dir/$service.pid"
    SB_RUN_DIR=$run_dir setsid scripts/supervise.sh "$run_dir/$service.pid" -- "$bin_dir/switchboard-$service" "${options[@]}" \
        </dev/null >>"$log_dir/$service.log" 2>&1 &
    echo $! >"$run_dir/$service.supervisor.pid"
    printf '%s\n' "$launch" >"$run_dir/$service.launch"
    say "started switchboard-$service (supervisor pid $!, health http://127.0.0.1:$port/health/ready)"
done

for entry in "${services[@]}"; do
    service=${entry%%:*}
    port=${entry##*:}
    deadline=$((SECONDS + ready_timeout))
    # Each new pid in the service's pid file is one more start by its supervisor. The file is read as it is, not
    # through running_pid: a start that dies within the half second between looks is still one more start.
    last_pid= starts=0
    until is_ready "$port"; do
        if ! running_pid "$service" >/dev/null && ! supervisor_pid "$service" >/dev/null; then
            tail -n 30 "$log_dir/$service.log" >&2 || true
            die "switchboard-$service exited; the end of $log_dir/$service.log is above"
        fi
        pid=$(cat "$run_dir/$service.pid" 2>/dev/null || true)
        if [[ -n $pid && $pid != "$last_pid" ]]; then last_pid=$pid starts=$((starts + 1)); fi
        ((starts <= 3)) || give_up "$service" "failed $((starts - 1)) times while starting"
        ((SECONDS < deadline)) || give_up "$service" "was not ready after ${ready_timeout}s"
        sleep 0.5
    done
    say "switchboard-$service ready"
done
say "all running. Logs: $log_dir/{router,notifier,closer,gateway}.log; stop with: make down"
say "agent page: http://127.0.0.1:$gateway_port/ — sign in with a link (then choose online):"
python3 - "$tokens_file" "$gateway_port" <<'PY'
import json, sys
for agent in json.load(open(sys.argv[1]))["agents"]:
    print(f"up:   {agent['agent']} (desk {agent['desk']}): http://127.0.0.1:{sys.argv[2]}/?token={agent['token']}")
PY
