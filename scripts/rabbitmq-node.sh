#!/usr/bin/env bash
# One project-local RabbitMQ node: its own name, ports, data folder and Erlang cookie.
# It never touches the system's node or any node with another name.
#
#   scripts/rabbitmq-node.sh start|stop|wipe|status|open|ctl <rabbitmqctl args>
#
# The node boots with publishing blocked; `start` opens it once the consistent-hash rings are in order
# (deploy/rabbitmq/hash-rings.sh). After `ctl start_app`, run `open` likewise.
#
# Environment (defaults in brackets):
#   SB_NODE_NAME [switchboard@localhost]  SB_AMQP_PORT [5673]  SB_MGMT_PORT [15673]
#   SB_DIST_PORT [25673]  SB_PROMETHEUS_PORT [15693]
#   SB_NODE_DIR [<repo>/var/rabbitmq; as root, for a clone the `rabbitmq` user cannot reach,
#     /var/lib/switchboard/<hash of the clone's path>/rabbitmq]
#   SB_AMQPS_PORT [none]: also a TLS listener on this port, with a certificate for `localhost` signed by
#     a CA of this node's own, made on first use: <node dir>/tls/ca.pem (and a client certificate,
#     client.pem and client-key.pem, which the node accepts).
#   SB_DEFINITIONS [<repo>/deploy/rabbitmq/definitions.json]
#   SB_PLUGINS [rabbitmq_management,rabbitmq_prometheus,rabbitmq_consistent_hash_exchange]
#   SB_STARTUP_TIMEOUT [120] seconds
#   SB_MAX_MESSAGE_BYTES [16777216]: the broker's max_message_size; the default is RabbitMQ 4's (3.x allows
#     128 MiB), so what works on this node works on a RabbitMQ 4 broker left at its defaults.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

node_name=${SB_NODE_NAME:-switchboard@localhost}
amqp_port=${SB_AMQP_PORT:-5673}
mgmt_port=${SB_MGMT_PORT:-15673}
dist_port=${SB_DIST_PORT:-25673}
prometheus_port=${SB_PROMETHEUS_PORT:-15693}
amqps_port=${SB_AMQPS_PORT:-}
node_dir=${SB_NODE_DIR:-$repo_root/var/rabbitmq}
definitions=${SB_DEFINITIONS:-$repo_root/deploy/rabbitmq/definitions.json}
plugins=${SB_PLUGINS:-rabbitmq_management,rabbitmq_prometheus,rabbitmq_consistent_hash_exchange}
startup_timeout=${SB_STARTUP_TIMEOUT:-120}
max_message_bytes=${SB_MAX_MESSAGE_BYTES:-16777216}

# The real scripts, not Debian's /usr/sbin wrappers: the wrappers run everything through
# `su rabbitmq`, which replaces HOME (and with it the cookie) by /var/lib/rabbitmq.
rabbitmq_bin=/usr/lib/rabbitmq/bin

say() { echo "rabbitmq-node [$node_name]: $*"; }
die() { say "$*" >&2; exit 1; }

[[ $node_name == *@* ]] || die "SB_NODE_NAME must look like name@host"
[[ $max_message_bytes =~ ^[1-9][0-9]*$ ]] || die "SB_MAX_MESSAGE_BYTES must be a positive number of bytes"
# As root the node runs as the `rabbitmq` user (below). A clone it cannot reach (under /root, say) keeps the
# node's data in a folder of the system's instead, one per clone.
if [[ -z ${SB_NODE_DIR:-} && $EUID -eq 0 ]] && id rabbitmq >/dev/null 2>&1 \
    && ! runuser -u rabbitmq -- test -x "$repo_root"; then
    node_dir=/var/lib/switchboard/$(printf '%s' "$repo_root" | sha256sum | cut -c1-12)/rabbitmq
    mkdir -p "$node_dir"
    chmod 755 /var/lib/switchboard "${node_dir%/rabbitmq}"
    # The node's commands start in the current folder, which that user cannot read either.
    definitions=$(realpath -m "$definitions")
    cd /
fi
node_dir=$(realpath -m "$node_dir")

# Environment shared by the server and by rabbitmqctl, so both see the same cookie (HOME)
# and nothing of /etc/rabbitmq leaks in.
node_env=(
    HOME="$node_dir/home"
    RABBITMQ_NODENAME="$node_name"
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    RABBITMQ_NODE_PORT="$amqp_port"
    RABBITMQ_DIST_PORT="$dist_port"
    RABBITMQ_MNESIA_BASE="$node_dir/mnesia"
    RABBITMQ_LOG_BASE="$node_dir/log"
    RABBITMQ_ENABLED_PLUGINS_FILE="$node_dir/enabled_plugins"
    RABBITMQ_CONFIG_FILE="$node_dir/rabbitmq.conf"
    RABBITMQ_ADVANCED_CONFIG_FILE="$node_dir/advanced.config"
    RABBITMQ_CONF_ENV_FILE="$node_dir/rabbitmq-env.conf"
    RABBITMQ_PID_FILE="$node_dir/rabbitmq.pid"
    # Erlang distribution on loopback only, like the listeners.
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    # rabbitmqctl's own distribution port: any free one. The default range (35672-35682) is shared
    # by every rabbitmqctl on the machine, and parallel calls run out of it.
    RABBITMQ_CTL_DIST_PORT_MIN=0
    RABBITMQ_CTL_DIST_PORT_MAX=0
)

# As root, the node runs as the `rabbitmq` user (as Debian's own scripts do), so its folders
# must belong to that user and be reachable by it.
if [[ $EUID -eq 0 ]]; then
    as_node_user=(runuser -u rabbitmq -- env "${node_env[@]}")
else
    as_node_user=(env "${node_env[@]}")
fi

ctl() { "${as_node_user[@]}" "$rabbitmq_bin/rabbitmqctl" -n "$node_name" "$@"; }

is_running() { ctl ping >/dev/null 2>&1; }

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A node dir belongs to one node name for its whole life.
claim_node_dir() {
    local recorded
    mkdir -p "$node_dir"
    if [[ -f $node_dir/node-name ]]; then
        recorded=$(<"$node_dir/node-name")
        [[ $recorded == "$node_name" ]] \
            || die "$node_dir belongs to node $recorded; use another SB_NODE_DIR"
    else
        echo "$node_name" >"$node_dir/node-name"
    fi
}

plugin_enabled() { [[ ",$plugins," == *",$1,"* ]]; }

endpoints() {
    local described="amqp 127.0.0.1:$amqp_port"
    if [[ -n $amqps_port ]]; then described+=", amqps localhost:$amqps_port (CA $node_dir/tls/ca.pem)"; fi
    if plugin_enabled rabbitmq_management; then described+=", management http://127.0.0.1:$mgmt_port"; fi
    if plugin_enabled rabbitmq_prometheus; then described+=", prometheus http://127.0.0.1:$prometheus_port/metrics"; fi
    echo "$described"
}

# A CA of this node's own, a server certificate for `localhost` and a client certificate, all signed by
# it; made once, kept with the node's data.
write_tls_files() {
    local tls=$node_dir/tls
    [[ -f $tls/client.pem ]] && return 0
    command -v openssl >/dev/null || die "SB_AMQPS_PORT needs openssl"
    mkdir -p "$tls"
    local key=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    {
        openssl req -x509 "${key[@]}" -days 3650 -subj "/CN=Switchboard local node CA" \
            -keyout "$tls/ca-key.pem" -out "$tls/ca.pem"
        openssl req "${key[@]}" -subj "/CN=localhost" -keyout "$tls/server-key.pem" -out "$tls/server.csr"
        openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca-key.pem" -CAcreateserial \
            -days 3650 -out "$tls/server.pem" \
            -extfile <(printf 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n')
        openssl req "${key[@]}" -subj "/CN=switchboard" -keyout "$tls/client-key.pem" -out "$tls/client.csr"
        openssl x509 -req -in "$tls/client.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca-key.pem" -CAcreateserial \
            -days 3650 -out "$tls/client.pem" -extfile <(printf 'extendedKeyUsage=clientAuth\n')
    } >"$tls/openssl.log" 2>&1 || die "could not make the TLS certificates: $(tail -n 5 "$tls/openssl.log")"
    rm -f "$tls"/*.csr
}

write_node_files() {
    mkdir -p "$node_dir/home" "$node_dir/mnesia" "$node_dir/log"
    if [[ ! -f $node_dir/home/.erlang.cookie ]]; then
        od -An -N20 -tx1 /dev/urandom | tr -d ' \n' >"$node_dir/home/.erlang.cookie"
    fi
    chmod 400 "$node_dir/home/.erlang.cookie"
    : >"$node_dir/rabbitmq-env.conf"
    if [[ -n $amqps_port ]]; then write_tls_files; fi
    echo "[${plugins}]." >"$node_dir/enabled_plugins"
    [[ -f $definitions ]] || die "definitions file not found: $definitions"
    # A copy inside the node dir, so the node user can read it wherever the repository lives.
    cp "$definitions" "$node_dir/definitions.json"
    {
        echo "# Written by scripts/rabbitmq-node.sh on every start: change the script, not this file."
        echo "listeners.tcp.default = 127.0.0.1:$amqp_port"
        if [[ -n $amqps_port ]]; then
            echo "listeners.ssl.default = 127.0.0.1:$amqps_port"
            echo "ssl_options.cacertfile = $node_dir/tls/ca.pem"
            echo "ssl_options.certfile = $node_dir/tls/server.pem"
            echo "ssl_options.keyfile = $node_dir/tls/server-key.pem"
            echo "ssl_options.verify = verify_peer"
            echo "ssl_options.fail_if_no_peer_cert = false"
        fi
        echo "definitions.import_backend = local_filesystem"
        echo "definitions.local.path = $node_dir/definitions.json"
        echo "# The development user of definitions.json may only connect from this machine."
        echo "loopback_users.switchboard = true"
        echo "# Publishers stay blocked after every boot until deploy/rabbitmq/hash-rings.sh opens the node."
        echo "vm_memory_high_watermark.relative = 0.0"
        echo "max_message_size = $max_message_bytes"
        # Settings of a plugin that is not enabled would stop the node from booting.
        if plugin_enabled rabbitmq_management; then
            echo "management.tcp.ip = 127.0.0.1"
            echo "management.tcp.port = $mgmt_port"
        fi
        if plugin_enabled rabbitmq_prometheus; then
            echo "prometheus.tcp.ip = 127.0.0.1"
            echo "prometheus.tcp.port = $prometheus_port"
        fi
    } >"$node_dir/rabbitmq.conf"
    if [[ $EUID -eq 0 ]]; then
        chown -R rabbitmq:rabbitmq "$node_dir"
        runuser -u rabbitmq -- test -r "$node_dir/rabbitmq.conf" \
            || die "user rabbitmq cannot reach $node_dir (a parent folder is closed to it); use another SB_NODE_DIR"
    fi
}

close_inherited_descriptors() {
    local path descriptor
    for path in /proc/$BASHPID/fd/*; do
        descriptor=${path##*/}
        ((descriptor > 2)) && eval "exec $descriptor>&-"
    done
    return 0
}

print_failure_logs() {
    local log=$node_dir/log/$node_name.log
    echo "--- $node_dir/console.log (tail)" >&2
    tail -n 30 "$node_dir/console.log" >&2 2>/dev/null || true
    # The cause is usually an early [error] line, far above the shutdown noise at the tail.
    echo "--- $log (errors)" >&2
    grep -m 20 '\[error\]' "$log" >&2 2>/dev/null || true
    echo "--- $log (tail)" >&2
    tail -n 20 "$log" >&2 2>/dev/null || true
}

start() {
    claim_node_dir
    if is_running; then
        # Opened again in case its application was restarted (`ctl start_app`) since.
        open
        say "already running: $(endpoints)"
        return 0
    fi
    local port ports=("$amqp_port" "$dist_port")
    if [[ -n $amqps_port ]]; then ports+=("$amqps_port"); fi
    plugin_enabled rabbitmq_management && ports+=("$mgmt_port")
    plugin_enabled rabbitmq_prometheus && ports+=("$prometheus_port")
    for port in "${ports[@]}"; do
        port_in_use "$port" && die "port $port is taken by another process"
    done
    write_node_files
    say "starting (data in $node_dir)"
    rm -f "$node_dir/rabbitmq.pid" # left behind if the node was killed
    # Foreground mode in a new session instead of `-detached`, which loses every boot error.
    # The node must not keep any descriptor this script inherited open: a caller that waits for
    # the end of our output, or (like Foundation's Process) for a descriptor it gave us to close,
    # would otherwise wait until the node stops.
    (
        close_inherited_descriptors
        exec setsid "${as_node_user[@]}" "$rabbitmq_bin/rabbitmq-server" </dev/null >>"$node_dir/console.log" 2>&1
    ) &
    local launcher=$!
    local deadline=$((SECONDS + startup_timeout))
    # The pid file appears early in boot; polling for it costs nothing, unlike rabbitmqctl.
    until [[ -s $node_dir/rabbitmq.pid ]]; do
        if ! kill -0 "$launcher" 2>/dev/null; then
            print_failure_logs
            die "the node exited during boot"
        fi
        if ((SECONDS >= deadline)); then
            print_failure_logs
            die "not reachable after ${startup_timeout}s"
        fi
        sleep 1
    done
    if ! ctl await_startup --timeout "$((deadline - SECONDS > 5 ? deadline - SECONDS : 5))" >/dev/null; then
        print_failure_logs
        die "did not finish booting"
    fi
    open
    say "running: $(endpoints)"
}

# Puts the hash rings in order, then lets publishers in.
open() { "$repo_root/deploy/rabbitmq/hash-rings.sh" open "${as_node_user[@]}" "$rabbitmq_bin/rabbitmqctl" -n "$node_name"; }

stop() {
    if ! is_running; then
        say "not running"
        return 0
    fi
    # With the pid file, rabbitmqctl waits until the Erlang VM has exited.
    ctl stop "$node_dir/rabbitmq.pid" >/dev/null
    say "stopped"
}

wipe() {
    if [[ -f $node_dir/node-name ]]; then
        claim_node_dir
    elif [[ -d $node_dir && -n $(ls -A "$node_dir") ]]; then
        die "$node_dir has no node-name file: not a node dir, not removing it"
    fi
    stop
    rm -rf "$node_dir"
    say "wiped $node_dir"
}

status() {
    if is_running; then
        say "running: $(endpoints); data in $node_dir"
    else
        say "not running (data in $node_dir)"
        return 3
    fi
}

command=${1:-}
[[ $# -gt 0 ]] && shift
case $command in
    start) start ;;
    stop) stop ;;
    wipe) wipe ;;
    status) status ;;
    open) open ;;
    ctl) ctl "$@" ;;
    *) echo "usage: $0 start|stop|wipe|status|open|ctl <rabbitmqctl args>" >&2; exit 2 ;;
esac
