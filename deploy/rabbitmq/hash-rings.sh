#!/usr/bin/env bash
# Keeps a desk on the same shard across broker restarts.
#
#   deploy/rabbitmq/hash-rings.sh check|rebuild|open [rabbitmqctl command]
#
# A consistent-hash exchange maps a desk to one of its buckets, and each bucket to a shard queue in
# the order the bindings were added. RabbitMQ 3.10 keeps that ring in memory only and rebuilds it at
# every boot (and `start_app`) in an order that varies from boot to boot (several bindings are recovered
# in parallel), so without this script a restart can send a desk's input to another shard, which
# dead-letters it as an unknown desk. The services bind the shard queues in the order of their names,
# and this script puts every ring back into that order:
#
#   check    exit status 1, listing them, if any ring is not in queue-name order
#   rebuild  rebuild the rings that are not, each in one transaction (routing never sees a partial ring)
#   open     what runs after every boot: wait for the boot to finish, rebuild, then let publishers in
#            by setting the memory high watermark to $SWITCHBOARD_MEMORY_WATERMARK (default 0.4)
#
# Publishers must not get in before the rebuild, so the broker boots with
# `vm_memory_high_watermark.relative = 0.0` in rabbitmq.conf: its memory alarm blocks every publishing
# connection (consumers go on) until `open` lifts it. A broker that was never opened stays blocked,
# which is safe and shows in the management UI as a memory alarm.
#
# The rabbitmqctl command defaults to `rabbitmqctl`; scripts/rabbitmq-node.sh passes its own.
set -euo pipefail

mode=${1:-}
[[ $# -gt 0 ]] && shift
if [[ $# -eq 0 ]]; then set -- rabbitmqctl; fi

# Erlang that prints one line per consistent-hash exchange: vhost, name, and "in-order", "rebuilt" or
# "out-of-order". The ring is rebuilt exactly as the plugin builds it from bindings added one by one; `check`
# rebuilds it inside a transaction that it then aborts.
rings() {
    local mode=$1
    echo "
        Ring = rabbit_exchange_type_consistent_hash_ring_state,
        Plugin = rabbit_exchange_type_consistent_hash,
        Rebuild = fun (X) ->
            Name = element(2, X),
            Before = mnesia:read(Ring, Name),
            ok = mnesia:delete({Ring, Name}),
            Plugin:create(transaction, X),
            [Plugin:add_binding(transaction, X, B) || B <- lists:usort(rabbit_binding:list_for_source(Name))],
            case {Before =:= mnesia:read(Ring, Name), $mode} of
                {true, _} -> mnesia:abort(<<\"in-order\">>);
                {false, check} -> mnesia:abort(<<\"out-of-order\">>);
                {false, rebuild} -> <<\"rebuilt\">>
            end
        end,
        [begin
             Verdict = case mnesia:transaction(fun () -> Rebuild(X) end) of
                 {atomic, V} -> V;
                 {aborted, V} when is_binary(V) -> V
             end,
             {resource, VHost, exchange, Name} = element(2, X),
             io:format(\"~s ~s ~s~n\", [VHost, Name, Verdict])
         end || X <- rabbit_exchange:list(), element(3, X) =:= 'x-consistent-hash'],"
}

# Runs the Erlang on the node, with what it prints and without the value of its last expression.
run() { "${ctl[@]}" eval "$1 ok." | { grep -v '^ok$' || true; }; }

ctl=("$@")
case $mode in
    check)
        report=$(run "$(rings check)")
        [[ -n $report ]] && echo "$report"
        ! grep -q ' out-of-order$' <<<"$report"
        ;;
    rebuild)
        run "$(rings rebuild)"
        ;;
    open)
        # One rabbitmqctl call, as each costs about half a second of start-up: wait for the boot (up to
        # 5 minutes, as `rabbitmqctl await_startup`), rebuild, open.
        watermark=${SWITCHBOARD_MEMORY_WATERMARK:-0.4}
        if [[ ! $watermark =~ ^[0-9]+(\.[0-9]+)?$ ]]; then
            echo "SWITCHBOARD_MEMORY_WATERMARK must be a fraction of the machine's memory, such as 0.4" >&2
            exit 2
        fi
        report=$(run "ok = rabbit:await_startup(node(), false, 300000), $(rings rebuild)
            ok = vm_memory_monitor:set_vm_memory_high_watermark($watermark * 1.0),")
        grep ' rebuilt$' <<<"$report" || true
        ;;
    *)
        echo "usage: $0 check|rebuild|open [rabbitmqctl command]" >&2
        exit 2
        ;;
esac
