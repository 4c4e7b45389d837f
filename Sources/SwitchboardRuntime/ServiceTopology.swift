import SwitchboardAMQP
import SwitchboardCommon

/// The three sharded services.
public enum ServiceName: String, Hashable, Sendable, CaseIterable {
    case router, notifier, closer
}

/// Every exchange, queue and binding a service needs, as one `Topology` value that each instance declares
/// (idempotently) when it starts. Names are fixed: operators, definitions and other code rely on them.
public enum ServiceTopology {
    /// Alternate exchange of every public exchange and of the shard hash exchanges: nothing published there
    /// that no queue takes is lost.
    public static let unroutableExchange = "switchboard.unroutable"
    public static let unroutableQueue = "switchboard.unroutable"
    /// Bad input and messages over the delivery limit go here, with their reason in `x-switchboard-reason`.
    public static let deadLetterExchange = "switchboard.dead"
    public static let deadLetterQueue = "switchboard.dead-letters"
    /// The stream of every Router event, for replay and audit.
    public static let eventsLog = "switchboard.events.log"
    /// Redeliveries of one shard input before the broker dead-letters it.
    public static let deliveryLimit = 5
    /// Marks a shard's own timer pulse (published to its shard queue through the default exchange): no input of
    /// anyone's, and nothing to requeue once dead-lettered.
    public static let pulseHeader = "x-switchboard-pulse"

    public struct Retention: Hashable, Sendable {
        /// `x-max-age` of the shard journals, e.g. "7D".
        public var journalMaxAge: String
        /// `x-max-age` of `switchboard.events.log`.
        public var eventsLogMaxAge: String
        /// `x-max-length-bytes` of `switchboard.events.log`; must match deploy/rabbitmq/definitions.json.
        public var eventsLogMaxBytes: Int
        /// Journal segments are the unit of retention: small ones let old entries go sooner.
        public var journalSegmentBytes: Int

        public init(
            journalMaxAge: String = "7D", eventsLogMaxAge: String = "7D", eventsLogMaxBytes: Int = 2_000_000_000,
            journalSegmentBytes: Int = 16_000_000
        ) {
            self.journalMaxAge = journalMaxAge
            self.eventsLogMaxAge = eventsLogMaxAge
            self.eventsLogMaxBytes = eventsLogMaxBytes
            self.journalSegmentBytes = journalSegmentBytes
        }
    }

    public static func hashExchange(_ service: ServiceName) -> String { "switchboard.\(service.rawValue).hash" }

    public static func shardQueue(_ service: ServiceName, shard: Int) -> String {
        "switchboard.\(service.rawValue).shard.\(shard)"
    }

    public static func journal(_ service: ServiceName, shard: Int) -> String {
        "switchboard.\(service.rawValue).journal.\(shard)"
    }

    /// The inbound types the Router takes: all but `message.posted`, which is the Closer's.
    public static let routerInboundTypes = [
        "conversation.requested", "conversation.ended", "agent.status", "offer.accept", "offer.decline",
        "session.end", "session.transfer", "agent.sync", "desk.configure", "agent.upsert", "agent.remove",
    ]

    /// The Router events the Closer needs.
    public static let closerEventTypes = [
        "desk.configured", "conversation.assigned", "conversation.ended", "conversation.queued",
    ]

    public static func topology(for service: ServiceName, shards: Int, retention: Retention = Retention()) -> Topology {
        precondition(shards > 0, "a service needs at least one shard")
        var topology = shared(retention)
        let hash = hashExchange(service)
        topology.exchanges.append(
            Topology.Exchange(
                hash, kind: .consistentHash,
                arguments: ["hash-header": "desk", "alternate-exchange": .string(unroutableExchange)]))
        switch service {
        case .router:
            for type in routerInboundTypes {
                topology.bindings.append(.init(from: ContractExchange.inbound.rawValue, to: .exchange(hash), routingKey: type))
            }
        case .notifier:
            topology.bindings.append(.init(from: ContractExchange.events.rawValue, to: .exchange(hash), routingKey: "#"))
        case .closer:
            for type in closerEventTypes {
                topology.bindings.append(.init(from: ContractExchange.events.rawValue, to: .exchange(hash), routingKey: type))
            }
            topology.bindings.append(
                .init(from: ContractExchange.inbound.rawValue, to: .exchange(hash), routingKey: "message.posted"))
        }
        // In the order of the shard queues' names (`shard.10` before `shard.2`): the hash ring gives its buckets to
        // the bindings in the order they were added, and deploy/rabbitmq/hash-rings.sh rebuilds it after every
        // broker boot in that order, so a desk stays on its shard across restarts.
        let inRingOrder = (0..<shards).sorted {
            shardQueue(service, shard: $0).utf8.lexicographicallyPrecedes(shardQueue(service, shard: $1).utf8)
        }
        for shard in inRingOrder {
            let queue = shardQueue(service, shard: shard)
            topology.queues.append(
                Topology.Queue(
                    queue, kind: .quorum, singleActiveConsumer: true, deliveryLimit: deliveryLimit,
                    deadLetterExchange: deadLetterExchange, deadLetterStrategy: .atLeastOnce, overflow: .rejectPublish))
            // Each shard weighs the same on the hash ring.
            topology.bindings.append(.init(from: hash, to: .queue(queue), routingKey: "1"))
        }
        // Shard 0's journal last: once it exists, every journal of the shard count that declared it does
        // (`shardCountMismatch`).
        for shard in inRingOrder.filter({ $0 != 0 }) + [0] {
            topology.queues.append(
                Topology.Queue(
                    journal(service, shard: shard), kind: .stream, maxAge: retention.journalMaxAge,
                    arguments: ["x-stream-max-segment-size-bytes": .int(Int64(retention.journalSegmentBytes))],
                    keepsExisting: true))
        }
        return topology
    }

    /// The queues whose presence on the broker tells whether a service's deployment has `shards` shards:
    /// looked up before an instance declares its topology, for `shardCountMismatch`.
    public static func shardCountWitnesses(for service: ServiceName, shards: Int) -> [String] {
        [
            journal(service, shard: 0), journal(service, shard: shards - 1), shardQueue(service, shard: shards),
            journal(service, shard: shards),
        ]
    }

    /// Why an instance configured with `shards` shards must not join the deployment whose queues `existing`
    /// are (of `shardCountWitnesses`), or `nil` when it may. A desk belongs to the shard the hash exchange
    /// gives it, and its state lives in that shard's journal: an instance with more shards would bind new
    /// shard queues and move desks to shards that know nothing of them; one with fewer would leave shards
    /// bound that it never consumes. A broker with no journal 0 holds no deployment yet.
    public static func shardCountMismatch(for service: ServiceName, shards: Int, existing: Set<String>) -> String? {
        let advice = "every instance of the \(service.rawValue) must use the deployment's shards.count"
        for beyond in [shardQueue(service, shard: shards), journal(service, shard: shards)] where existing.contains(beyond) {
            return "the broker has \(beyond), so this deployment has more shards than \(shards): \(advice)"
        }
        let first = journal(service, shard: 0)
        let last = journal(service, shard: shards - 1)
        if existing.contains(first), !existing.contains(last) {
            return "the broker has \(first) but no \(last), so this deployment has fewer shards than \(shards): \(advice)"
        }
        return nil
    }

    /// What every service declares alike: the public exchanges, the unroutable catch-all, dead letters and the
    /// events log.
    private static func shared(_ retention: Retention) -> Topology {
        var exchanges = ContractExchange.allCases.map { exchange in
            Topology.Exchange(exchange.rawValue, kind: .topic, arguments: ["alternate-exchange": .string(unroutableExchange)])
        }
        exchanges.append(Topology.Exchange(unroutableExchange, kind: .fanout))
        exchanges.append(Topology.Exchange(deadLetterExchange, kind: .fanout))
        return Topology(
            exchanges: exchanges,
            queues: [
                Topology.Queue(unroutableQueue, kind: .quorum),
                Topology.Queue(deadLetterQueue, kind: .quorum),
                Topology.Queue(
                    eventsLog, kind: .stream, maxLengthBytes: retention.eventsLogMaxBytes, maxAge: retention.eventsLogMaxAge),
            ],
            bindings: [
                .init(from: unroutableExchange, to: .queue(unroutableQueue)),
                .init(from: deadLetterExchange, to: .queue(deadLetterQueue)),
                .init(from: ContractExchange.events.rawValue, to: .queue(eventsLog), routingKey: "#"),
            ])
    }
}
