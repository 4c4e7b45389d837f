import SwitchboardAMQP
import SwitchboardTestSupport
import SwitchboardCommon
import SwitchboardRuntime
import Testing

/// The least-privilege users of deploy/rabbitmq/definitions.json (which every test node imports at boot):
/// each service user can declare and use its own topology, and is refused what belongs to others.
@Suite(.sharedBroker, .serialized)
struct DeployDefinitionsTests {
    /// The placeholder password of every non-development user in the committed definitions.
    static let placeholderPassword = "change-me"

    private func connect(as user: String) async throws -> AMQPConnection {
        try await TestBroker.shared.connect(name: "definitions-\(user)", user: user, password: Self.placeholderPassword)
    }

    private func expectRefused(
        _ what: String, sourceLocation: SourceLocation = #_sourceLocation, _ operation: () async throws -> Void
    ) async {
        do {
            try await operation()
            Issue.record("\(what) was allowed", sourceLocation: sourceLocation)
        } catch let error as AMQPError {
            guard case .accessRefused = error else {
                Issue.record("\(what): expected access refused, got \(error)", sourceLocation: sourceLocation)
                return
            }
        } catch {
            Issue.record("\(what): expected access refused, got \(error)", sourceLocation: sourceLocation)
        }
    }

    private static let serviceOutputs: [ServiceName: ContractExchange] = [
        .router: .events, .notifier: .workstations, .closer: .outbound,
    ]

    private static let properties = AMQPProperties(
        contentType: WireProperties.jsonContentType, headers: ["desk": "definitions"], deliveryMode: .persistent)

    @Test(arguments: ServiceName.allCases)
    func serviceUserDeclaresItsTopologyAndUsesItsQueues(_ service: ServiceName) async throws {
        let connection = try await connect(as: "switchboard-\(service.rawValue)")
        defer { Task { await connection.close() } }
        try await connection.declare(ServiceTopology.topology(for: service, shards: 2))

        let publisher = try await connection.publisher()
        let output = try #require(Self.serviceOutputs[service])
        try await publisher.publish(Array("{}".utf8), exchange: output.rawValue, routingKey: "definitions.test", properties: Self.properties)
        try await publisher.publish(
            Array("{}".utf8), exchange: ServiceTopology.deadLetterExchange, routingKey: "x", properties: Self.properties)
        // Journal entries and pulses go through the default exchange.
        try await publisher.publish(
            Array("entry".utf8), exchange: "", routingKey: ServiceTopology.journal(service, shard: 0), properties: Self.properties)
        try await publisher.publish(
            Array("pulse".utf8), exchange: "", routingKey: ServiceTopology.shardQueue(service, shard: 1), properties: Self.properties)

        let shard = try await connection.consume(queue: ServiceTopology.shardQueue(service, shard: 1), prefetch: 10)
        let pulse = try await firstElement(of: shard, "the pulse in shard queue 1")
        #expect(pulse.body == Array("pulse".utf8))
        try pulse.ack()
        shard.cancel()

        let journal = try await connection.consume(
            queue: ServiceTopology.journal(service, shard: 0), prefetch: 10,
            arguments: StreamOffset.first.consumerArguments)
        let entry = try await firstElement(of: journal, "the entry in journal 0")
        #expect(entry.body == Array("entry".utf8))
        try entry.ack()
        journal.cancel()
        await connection.close()
    }

    @Test func closerMayEndConversationsOnTheInboundExchangeButNotActAsAnAgent() async throws {
        let connection = try await connect(as: "switchboard-closer")
        defer { Task { await connection.close() } }
        try await connection.declare(ServiceTopology.topology(for: .closer, shards: 2))
        let publisher = try await connection.publisher()
        try await publisher.publish(
            Array("{}".utf8), exchange: ContractExchange.inbound.rawValue, routingKey: "conversation.ended",
            properties: Self.properties)
        await expectRefused("closer publishing offer.accept") {
            try await publisher.publish(
                Array("{}".utf8), exchange: ContractExchange.inbound.rawValue, routingKey: "offer.accept",
                properties: Self.properties)
        }
        await connection.close()
    }

    @Test func servicesAreRefusedWhatBelongsToOthers() async throws {
        let router = try await connect(as: "switchboard-router")
        defer { Task { await router.close() } }
        try await router.declare(ServiceTopology.topology(for: .router, shards: 2))
        let notifier = try await connect(as: "switchboard-notifier")
        defer { Task { await notifier.close() } }

        await expectRefused("notifier reading the router's shard queue") {
            _ = try await notifier.consume(queue: ServiceTopology.shardQueue(.router, shard: 0))
        }
        await expectRefused("notifier reading the router's journal") {
            _ = try await notifier.consume(
                queue: ServiceTopology.journal(.router, shard: 0), arguments: StreamOffset.first.consumerArguments)
        }
        await expectRefused("notifier declaring a router queue") {
            try await notifier.declare(Topology(queues: [.init("switchboard.router.shard.9", kind: .quorum)]))
        }
        await expectRefused("notifier publishing a Router event") {
            try await notifier.publisher().publish(
                Array("{}".utf8), exchange: ContractExchange.events.rawValue, routingKey: "offer.made", properties: Self.properties)
        }
        await expectRefused("router publishing to workstations") {
            try await router.publisher().publish(
                Array("{}".utf8), exchange: ContractExchange.workstations.rawValue, routingKey: "d.a", properties: Self.properties)
        }
        await expectRefused("router reading the dead letters") {
            _ = try await router.consume(queue: ServiceTopology.deadLetterQueue)
        }
        await router.close()
        await notifier.close()
    }

    @Test func gatewaySendsAgentCommandsAndReadsWorkstationsOnly() async throws {
        let admin = try await TestBroker.shared.connect(name: "definitions-admin")
        defer { Task { await admin.close() } }
        try await admin.declare(ServiceTopology.topology(for: .router, shards: 2))
        let gateway = try await connect(as: "switchboard-gateway")
        defer { Task { await gateway.close() } }

        let queue = "switchboard.gateway.\(uniqueName("desk"))"
        try await gateway.declare(
            Topology(
                queues: [.init(queue, kind: .classic, durable: false, exclusive: true, autoDelete: true)],
                bindings: [.init(from: ContractExchange.workstations.rawValue, to: .queue(queue), routingKey: "definitions.*")]))
        let publisher = try await gateway.publisher()
        try await publisher.publish(
            Array("{}".utf8), exchange: ContractExchange.inbound.rawValue, routingKey: "offer.accept", properties: Self.properties)
        // The Router knows who sent an agent command by its user_id: the gateway may give its own user...
        var asGateway = Self.properties
        asGateway.userID = "switchboard-gateway"
        try await publisher.publish(
            Array("{}".utf8), exchange: ContractExchange.inbound.rawValue, routingKey: "offer.accept", properties: asGateway)
        // ...and the broker refuses any other, so a gateway cannot pass for a user the Router allows more.
        var asDevelopmentUser = Self.properties
        asDevelopmentUser.userID = "switchboard"
        do {
            try await gateway.publisher().publish(
                Array("{}".utf8), exchange: ContractExchange.inbound.rawValue, routingKey: "offer.accept",
                properties: asDevelopmentUser)
            Issue.record("the broker took a user_id other than the connection's user")
        } catch {
            guard error is AMQPError else {
                Issue.record("expected the broker to refuse the user_id, got \(error)")
                return
            }
        }

        await expectRefused("gateway publishing to switchboard.events") {
            try await gateway.publisher().publish(
                Array("{}".utf8), exchange: ContractExchange.events.rawValue, routingKey: "offer.made", properties: Self.properties)
        }
        await expectRefused("gateway publishing desk.configure") {
            try await gateway.publisher().publish(
                Array("{}".utf8), exchange: ContractExchange.inbound.rawValue, routingKey: "desk.configure",
                properties: Self.properties)
        }
        await expectRefused("gateway reading the events log") {
            _ = try await gateway.consume(
                queue: ServiceTopology.eventsLog, arguments: StreamOffset.first.consumerArguments)
        }
        await expectRefused("gateway reading a router shard") {
            _ = try await gateway.consume(queue: ServiceTopology.shardQueue(.router, shard: 0))
        }
        await gateway.close()
        await admin.close()
    }

    @Test func opsUserPublishesDeskPolicyReadsTheLogsAndDeadLettersButNoShard() async throws {
        let admin = try await TestBroker.shared.connect(name: "definitions-admin-ops")
        defer { Task { await admin.close() } }
        try await admin.declare(ServiceTopology.topology(for: .router, shards: 2))
        let ops = try await connect(as: "switchboard-ops")
        defer { Task { await ops.close() } }

        try await ops.publisher().publish(
            Array("{}".utf8), exchange: ContractExchange.inbound.rawValue, routingKey: "desk.configure", properties: Self.properties)
        let log = try await ops.consume(
            queue: ServiceTopology.eventsLog, arguments: StreamOffset.first.consumerArguments)
        log.cancel()
        let deadLetters = try await ops.consume(queue: ServiceTopology.deadLetterQueue)
        deadLetters.cancel()
        // `switchboard journal replay` finds the shards' journals and reads them.
        #expect(try await ops.queueStatus(ServiceTopology.journal(.router, shard: 1)) != nil)
        let journal = try await ops.consume(
            queue: ServiceTopology.journal(.router, shard: 1), arguments: StreamOffset.first.consumerArguments)
        journal.cancel()

        await expectRefused("ops reading a router shard") {
            _ = try await ops.consume(queue: ServiceTopology.shardQueue(.router, shard: 0))
        }
        await expectRefused("ops declaring a queue") {
            try await ops.declare(Topology(queues: [.init("switchboard.ops.mine", kind: .classic)]))
        }
        for exchange in [ContractExchange.events, .workstations, .outbound] {
            await expectRefused("ops publishing to \(exchange.rawValue)") {
                try await ops.publisher().publish(
                    Array("{}".utf8), exchange: exchange.rawValue, routingKey: "definitions.x", properties: Self.properties)
            }
        }
        await ops.close()
        await admin.close()
    }

    @Test func platformUserSendsItsOwnInboundTypesAndTakesOutboundFromItsOwnQueue() async throws {
        let admin = try await TestBroker.shared.connect(name: "definitions-admin-platform")
        defer { Task { await admin.close() } }
        try await admin.declare(ServiceTopology.topology(for: .closer, shards: 2))
        let platform = try await connect(as: "switchboard-platform")
        defer { Task { await platform.close() } }

        let queue = "switchboard.platform.\(uniqueName("outbound"))"
        try await platform.declare(
            Topology(
                queues: [.init(queue, kind: .classic, durable: false, exclusive: true, autoDelete: true)],
                bindings: [.init(from: ContractExchange.outbound.rawValue, to: .queue(queue), routingKey: "definitions.#")]))
        let publisher = try await platform.publisher()
        for type in ["conversation.requested", "conversation.ended", "message.posted"] {
            try await publisher.publish(
                Array("{}".utf8), exchange: ContractExchange.inbound.rawValue, routingKey: type, properties: Self.properties)
        }
        try await admin.publisher().publish(
            Array("closure".utf8), exchange: ContractExchange.outbound.rawValue, routingKey: "definitions.closure.message",
            properties: Self.properties)
        let closure = try await firstElement(of: try await platform.consume(queue: queue, prefetch: 10), "the closure message")
        #expect(closure.body == Array("closure".utf8))
        try closure.ack()

        for type in ["offer.accept", "agent.status", "desk.configure", "agent.upsert"] {
            await expectRefused("platform publishing \(type)") {
                try await platform.publisher().publish(
                    Array("{}".utf8), exchange: ContractExchange.inbound.rawValue, routingKey: type, properties: Self.properties)
            }
        }
        await expectRefused("platform publishing to switchboard.outbound") {
            try await platform.publisher().publish(
                Array("{}".utf8), exchange: ContractExchange.outbound.rawValue, routingKey: "definitions.closure.message",
                properties: Self.properties)
        }
        await expectRefused("platform reading the events log") {
            _ = try await platform.consume(queue: ServiceTopology.eventsLog, arguments: StreamOffset.first.consumerArguments)
        }
        await expectRefused("platform reading a closer shard") {
            _ = try await platform.consume(queue: ServiceTopology.shardQueue(.closer, shard: 0))
        }
        await expectRefused("platform declaring a queue not its own") {
            try await platform.declare(Topology(queues: [.init("switchboard.gateway.mine", kind: .classic)]))
        }
        await platform.close()
        await admin.close()
    }
}
