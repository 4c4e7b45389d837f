/// Exchanges, queues and bindings declared together from one value.
///
/// Declaration is idempotent: declaring the same topology again changes nothing, and a connection
/// declares every topology it was given again after it reconnects. Declaring something that exists
/// with other settings fails with `AMQPError.preconditionFailed`.
public struct Topology: Sendable, Hashable {
    public var exchanges: [Exchange]
    public var queues: [Queue]
    public var bindings: [Binding]

    public init(exchanges: [Exchange] = [], queues: [Queue] = [], bindings: [Binding] = []) {
        self.exchanges = exchanges
        self.queues = queues
        self.bindings = bindings
    }

    public struct Exchange: Sendable, Hashable {
        public enum Kind: Sendable, Hashable {
            case direct, fanout, topic, headers
            /// `x-consistent-hash` from the rabbitmq_consistent_hash_exchange plugin. Binding keys are
            /// weights ("1"); set the `hash-header` argument to hash a header instead of the routing key.
            case consistentHash
            /// Any other plugin-provided type, by its AMQP name.
            case custom(String)

            var amqpName: String {
                switch self {
                case .direct: "direct"
                case .fanout: "fanout"
                case .topic: "topic"
                case .headers: "headers"
                case .consistentHash: "x-consistent-hash"
                case .custom(let name): name
                }
            }
        }

        public var name: String
        public var kind: Kind
        public var durable: Bool
        public var autoDelete: Bool
        public var isInternal: Bool
        public var arguments: AMQPTable

        public init(
            _ name: String, kind: Kind, durable: Bool = true, autoDelete: Bool = false,
            isInternal: Bool = false, arguments: AMQPTable = [:]
        ) {
            self.name = name
            self.kind = kind
            self.durable = durable
            self.autoDelete = autoDelete
            self.isInternal = isInternal
            self.arguments = arguments
        }

        /// A consistent-hash exchange that hashes the given header instead of the routing key.
        public static func consistentHash(_ name: String, hashingHeader header: String) -> Exchange {
            Exchange(name, kind: .consistentHash, arguments: ["hash-header": .string(header)])
        }
    }

    public struct Queue: Sendable, Hashable {
        public enum Kind: String, Sendable, Hashable {
            case classic, quorum, stream
        }

        public enum DeadLetterStrategy: String, Sendable, Hashable {
            case atMostOnce = "at-most-once"
            /// Quorum queues only; needs `overflow: .rejectPublish`.
            case atLeastOnce = "at-least-once"
        }

        public enum Overflow: String, Sendable, Hashable {
            case dropHead = "drop-head"
            case rejectPublish = "reject-publish"
            case rejectPublishDeadLetter = "reject-publish-dlx"
        }

        public var name: String
        public var kind: Kind
        public var durable: Bool
        public var exclusive: Bool
        public var autoDelete: Bool
        /// `x-single-active-consumer`: only one consumer receives at a time; another takes over when it goes.
        public var singleActiveConsumer: Bool
        /// `x-delivery-limit` (quorum): dead-letter or drop after this many redeliveries.
        public var deliveryLimit: Int?
        public var deadLetterExchange: String?
        public var deadLetterRoutingKey: String?
        public var deadLetterStrategy: DeadLetterStrategy?
        public var maxLength: Int?
        public var maxLengthBytes: Int?
        /// `x-max-age` (streams), e.g. "7D", "12h".
        public var maxAge: String?
        public var overflow: Overflow?
        public var messageTTLMilliseconds: Int?
        /// Extra arguments, for anything the fields above do not name. They win over the fields.
        public var arguments: AMQPTable
        /// Declared only when missing: a queue that exists is kept with the arguments it was made with (a
        /// passive declare), for settings that may change between runs (a stream's retention) and that the
        /// broker would otherwise refuse as inequivalent. Change an existing queue's with a policy.
        public var keepsExisting: Bool

        public init(
            _ name: String, kind: Kind = .classic, durable: Bool = true, exclusive: Bool = false,
            autoDelete: Bool = false, singleActiveConsumer: Bool = false, deliveryLimit: Int? = nil,
            deadLetterExchange: String? = nil, deadLetterRoutingKey: String? = nil,
            deadLetterStrategy: DeadLetterStrategy? = nil, maxLength: Int? = nil, maxLengthBytes: Int? = nil,
            maxAge: String? = nil, overflow: Overflow? = nil, messageTTLMilliseconds: Int? = nil,
            arguments: AMQPTable = [:], keepsExisting: Bool = false
        ) {
            self.name = name
            self.kind = kind
            self.durable = durable
            self.exclusive = exclusive
            self.autoDelete = autoDelete
            self.singleActiveConsumer = singleActiveConsumer
            self.deliveryLimit = deliveryLimit
            self.deadLetterExchange = deadLetterExchange
            self.deadLetterRoutingKey = deadLetterRoutingKey
            self.deadLetterStrategy = deadLetterStrategy
            self.maxLength = maxLength
            self.maxLengthBytes = maxLengthBytes
            self.maxAge = maxAge
            self.overflow = overflow
            self.messageTTLMilliseconds = messageTTLMilliseconds
            self.arguments = arguments
            self.keepsExisting = keepsExisting
        }

        /// The `x-` arguments sent with queue.declare.
        public var declarationArguments: AMQPTable {
            var table: AMQPTable = ["x-queue-type": .string(kind.rawValue)]
            if singleActiveConsumer { table["x-single-active-consumer"] = .bool(true) }
            if let deliveryLimit { table["x-delivery-limit"] = .int(Int64(deliveryLimit)) }
            if let deadLetterExchange { table["x-dead-letter-exchange"] = .string(deadLetterExchange) }
            if let deadLetterRoutingKey { table["x-dead-letter-routing-key"] = .string(deadLetterRoutingKey) }
            if let deadLetterStrategy { table["x-dead-letter-strategy"] = .string(deadLetterStrategy.rawValue) }
            if let maxLength { table["x-max-length"] = .int(Int64(maxLength)) }
            if let maxLengthBytes { table["x-max-length-bytes"] = .int(Int64(maxLengthBytes)) }
            if let maxAge { table["x-max-age"] = .string(maxAge) }
            if let overflow { table["x-overflow"] = .string(overflow.rawValue) }
            if let messageTTLMilliseconds { table["x-message-ttl"] = .int(Int64(messageTTLMilliseconds)) }
            table.merge(arguments) { _, extra in extra }
            return table
        }
    }

    public struct Binding: Sendable, Hashable {
        public enum Destination: Sendable, Hashable {
            case queue(String)
            case exchange(String)
        }

        /// The exchange messages come from.
        public var source: String
        public var destination: Destination
        public var routingKey: String
        public var arguments: AMQPTable

        public init(from source: String, to destination: Destination, routingKey: String = "", arguments: AMQPTable = [:]) {
            self.source = source
            self.destination = destination
            self.routingKey = routingKey
            self.arguments = arguments
        }
    }
}
