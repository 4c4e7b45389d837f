import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import HummingbirdWSClient
import Logging
import Prometheus
import ServiceLifecycle
import Synchronization
import SwitchboardAMQP
import SwitchboardCommon
import SwitchboardGateway
import SwitchboardRuntime
import SwitchboardService
import SwitchboardTestSupport
import Testing

/// The gateway in process against a real node, with a WebSocket client as the page.
@Suite struct GatewayIntegrationTests {
    static let aliceToken = "alice-token-0123456789"
    static let bobToken = "bob-token-0123456789ab"
    static let graceMilliseconds = 8_000

    /// The WebSocket URL of alice's page on the gateway at `port`.
    static func alicePage(_ port: Int) -> String { "ws://127.0.0.1:\(port)/ws?token=\(aliceToken)" }

    @Test func pagesAreSignedInRelayedToActedForAndSignedOffAfterGrace() async throws {
        try await TestBroker.withDedicatedNode(label: "gateway") { node in
            let (admin, commands) = try await Self.adminWatchingCommands(node)

            try await withGateway(node: node) { port, agents in
                // A token that is not in the file is refused at the upgrade.
                await #expect(throws: (any Error).self) {
                    try await WebSocketClient.connect(
                        url: "ws://127.0.0.1:\(port)/ws?token=not-a-known-token", logger: Logger(label: "test.page")
                    ) { _, _, _ in }
                }

                // The page asks /session first, so it can tell a bad link from a network failure.
                #expect(try await httpStatus("http://127.0.0.1:\(port)/session?token=not-a-known-token") == 401)
                #expect(try await httpStatus("http://127.0.0.1:\(port)/session?token=\(Self.aliceToken)") == 200)
                #expect(try await httpStatus("http://127.0.0.1:\(port)/ws?token=not-a-known-token") == 401)
                #expect(try await httpStatus("http://127.0.0.1:\(port)/health/ready") == 200)

                let page = PageClient(url: Self.alicePage(port))
                let hello = try await page.frame { $0.contains(#""kind":"hello""#) }
                #expect(hello.contains(#""agent":"alice""#) && hello.contains(#""desk":"gwtest""#))

                // Sign-in asks for the server's truth, as alice, once her queue is bound.
                let sync = try await commands.next { $0.properties.type == "agent.sync" }
                #expect(sync.message.body == .agentSync(agent: try AgentID("alice")))
                #expect(sync.message.desk.rawValue == "gwtest")
                #expect(sync.delivery.properties.userID == "switchboard-gateway")

                // A workstation event for gwtest.alice reaches the page exactly as published.
                let ring = WorkstationEvent(
                    desk: try DeskID("gwtest"), agent: try AgentID("alice"), seq: 1,
                    at: Instant(millisecondsSinceEpoch: 1_800_000_000_000),
                    body: .ring(
                        conversation: try ConversationID("c-1"), user: try UserID("u-1"), offer: try OfferToken("of-1"),
                        expiresAt: Instant(millisecondsSinceEpoch: 1_800_000_030_000), remainingMs: 30_000,
                        serverTime: Instant(millisecondsSinceEpoch: 1_800_000_000_000)))
                let wire = try WireCodec.outgoing(ring, id: try MessageID("ws-gwtest-alice-1"))
                try await admin.publisher(confirmWindow: 1).publish(wire)
                let relayed = try await page.frame { $0.contains(#""type":"ring""#) }
                #expect(relayed == String(decoding: wire.body, as: UTF8.self))

                // A command names alice and gwtest whatever the page says, with the gateway's user_id.
                page.send(#"{"type":"offer.accept","conversation":"c-1","offer":"of-1","agent":"mallory","desk":"other"}"#)
                let accept = try await commands.next { $0.properties.type == "offer.accept" }
                #expect(
                    accept.message.body
                        == .offerAccept(
                            agent: try AgentID("alice"), conversation: try ConversationID("c-1"), offer: try OfferToken("of-1")))
                #expect(accept.message.desk.rawValue == "gwtest")
                #expect(accept.delivery.properties.userID == "switchboard-gateway")
                #expect(accept.delivery.properties.deliveryMode == .persistent)
                #expect(accept.delivery.properties.messageID == accept.message.id.rawValue)
                #expect(accept.delivery.properties.headers["desk"]?.stringValue == "gwtest")

                // Bad input gets an error frame, and the socket stays usable.
                page.send("this is not JSON")
                let error = try await page.frame { $0.contains(#""kind":"error""#) }
                #expect(error.contains("not a JSON object"))
                // The error about a command with the page's ref repeats it, so the page knows which command it was.
                page.send(#"{"type":"offer.accept","ref":"c7"}"#)
                let named = try await page.frame { $0.contains(#""kind":"error""#) }
                #expect(named.contains(#""ref":"c7""#) && named.contains("conversation"))
                page.send(#"{"type":"agent.status","status":"online"}"#)
                let online = try await commands.next { $0.properties.type == "agent.status" }
                #expect(online.message.body == .agentStatus(agent: try AgentID("alice"), status: .online))

                // A page that comes back within the grace period gets what arrived meanwhile, in order.
                await page.close()
                try await waitUntil("the gateway saw the page close") { await agents.openSocketCount == 0 }
                let stopped = WorkstationEvent(
                    desk: try DeskID("gwtest"), agent: try AgentID("alice"), seq: 2,
                    at: Instant(millisecondsSinceEpoch: 1_800_000_001_000),
                    body: .ringStopped(conversation: try ConversationID("c-1"), offer: try OfferToken("of-1"), reason: .accepted))
                let stoppedWire = try WireCodec.outgoing(stopped, id: try MessageID("ws-gwtest-alice-2"))
                try await admin.publisher(confirmWindow: 1).publish(stoppedWire)
                let returning = PageClient(url: Self.alicePage(port))
                let replayed = try await returning.frame { $0.contains(#""type":"ring.stopped""#) }
                #expect(replayed == String(decoding: stoppedWire.body, as: UTF8.self))
                _ = try await commands.next { $0.properties.type == "agent.sync" }

                // Past the grace period after the page left, the gateway signs alice off.
                let closedAt = ContinuousClock.now
                await returning.close()
                let offline = try await commands.next { $0.properties.type == "agent.status" }
                #expect(offline.message.body == .agentStatus(agent: try AgentID("alice"), status: .offline))
                #expect(ContinuousClock.now - closedAt >= .milliseconds(Self.graceMilliseconds - 100))
            }
            await admin.close()
        }
    }

    /// A lost broker connection takes alice's queue, and what was published to it meanwhile, with it: once
    /// the gateway is back, it asks for her state again, with her page still open.
    @Test func aReconnectToTheBrokerAsksForTheStateOfEverySignedInAgent() async throws {
        try await TestBroker.withDedicatedNode(label: "gateway-reconnect") { node in
            let (admin, commands) = try await Self.adminWatchingCommands(node)
            try await withGateway(node: node) { port, agents in
                let page = PageClient(url: Self.alicePage(port))
                _ = try await page.frame { $0.contains(#""kind":"hello""#) }
                _ = try await commands.next { $0.properties.type == "agent.sync" }

                // Only the gateway's connection: the test's own queue must not go with it.
                let listed = try await node.ctl("list_connections", "-p", "switchboard", "--silent", "pid", "user")
                let gateway = listed.split(separator: "\n").filter { $0.hasSuffix("\tswitchboard-gateway") }
                #expect(gateway.count == 1, "\(listed)")
                for line in gateway {
                    _ = try await node.ctl("close_connection", String(line.split(separator: "\t")[0]), "closed by a test")
                }

                let sync = try await commands.next { $0.properties.type == "agent.sync" }
                #expect(sync.message.body == .agentSync(agent: try AgentID("alice")))
                #expect(await agents.openSocketCount == 1, "the page stayed open")
                await page.close()
            }
            await admin.close()
        }
    }

    /// Past the channels the broker allows on the gateway's connection, a new agent's page is told why before it
    /// is closed, and the agent already signed in is served on.
    @Test func aPagePastTheBrokersChannelLimitIsToldWhyAndTheAgentsSignedInGoOn() async throws {
        try await TestBroker.withDedicatedNode(label: "gateway-channels") { node in
            // Read by each new connection's handshake: the gateway's own two channels, then alice's two.
            _ = try await node.ctl("eval", "application:set_env(rabbit, channel_max, 4).")
            let (admin, commands) = try await Self.adminWatchingCommands(node)
            try await withGateway(node: node) { port, _ in
                let alice = PageClient(url: Self.alicePage(port))
                _ = try await commands.next { $0.properties.type == "agent.sync" }
                let bob = PageClient(url: "ws://127.0.0.1:\(port)/ws?token=\(Self.bobToken)")
                let refusal = try await bob.frame { $0.contains(#""kind":"error""#) }
                #expect(refusal.contains("as many agents as it can"))
                await bob.close()
                alice.send(#"{"type":"agent.status","status":"online"}"#)
                let online = try await commands.next { $0.properties.type == "agent.status" }
                #expect(online.message.body == .agentStatus(agent: try AgentID("alice"), status: .online))
                await alice.close()
            }
            await admin.close()
        }
    }

    /// A restart of the gateway leaves alice online: nothing is published for her at shutdown, and her
    /// page, back on the next gateway process, is served again.
    @Test func aGracefulShutdownLeavesTheAgentsPresenceAsItIs() async throws {
        try await TestBroker.withDedicatedNode(label: "gateway-restart") { node in
            let (admin, commands) = try await Self.adminWatchingCommands(node)
            let alice = try AgentID("alice")

            try await withGateway(node: node) { port, _ in
                let page = PageClient(url: Self.alicePage(port))
                _ = try await commands.next { $0.properties.type == "agent.sync" }
                page.send(#"{"type":"agent.status","status":"online"}"#)
                let online = try await commands.next { $0.properties.type == "agent.status" }
                #expect(online.message.body == .agentStatus(agent: alice, status: .online))
            }

            // The gateway has stopped, so whatever it published reached the queue before the marker.
            try await Self.expectNoStatusCommandBeforeAMarker(admin, commands)

            try await withGateway(node: node) { port, agents in
                let page = PageClient(url: Self.alicePage(port))
                let sync = try await commands.next { $0.properties.type == "agent.sync" }
                #expect(sync.message.body == .agentSync(agent: alice))
                try await waitUntil("the page is served again") { await agents.openSocketCount == 1 }
                await page.close()
            }
            await admin.close()
        }
    }

    /// alice's page moves from gateway a to gateway b: a's grace period ends without signing her off, as
    /// her page is open on b; once her page on b closes too, b signs her off after its grace period.
    /// Gateway b has another grace period than a (one being rolled out, say): both share the agent's presence
    /// queue, whose expiry comes from the grace period of the gateway that declared it first.
    @Test func anAgentWhosePageIsOpenOnAnotherGatewayIsNotSignedOffWhenTheGracePeriodEnds() async throws {
        try await TestBroker.withDedicatedNode(label: "gateway-handover") { node in
            let (admin, commands) = try await Self.adminWatchingCommands(node)
            let alice = try AgentID("alice")
            try await withGateway(node: node, instance: "a") { portA, agentsA in
                try await withGateway(node: node, instance: "b", graceMilliseconds: Self.graceMilliseconds + 1_000) {
                    portB, agentsB in
                    let onA = PageClient(url: Self.alicePage(portA))
                    _ = try await commands.next { $0.properties.type == "agent.sync" }
                    let onB = PageClient(url: Self.alicePage(portB))
                    _ = try await commands.next { $0.properties.type == "agent.sync" }
                    try await waitUntil("both gateways serve a page") {
                        let onA = await agentsA.openSocketCount
                        let onB = await agentsB.openSocketCount
                        return onA == 1 && onB == 1
                    }

                    await onA.close()
                    try await waitUntil("a's grace period has ended and its sign-off is decided", timeout: .seconds(60)) {
                        let sessions = await agentsA.sessionCount
                        let pending = await agentsA.pendingSignOffs
                        return sessions == 0 && pending == 0
                    }
                    try await Self.expectNoStatusCommandBeforeAMarker(admin, commands)

                    await onB.close()
                    let offline = try await commands.next { $0.properties.type == "agent.status" }
                    #expect(offline.message.body == .agentStatus(agent: alice, status: .offline))
                }
            }
            await admin.close()
        }
    }

    /// The race a grace period's end could lose: alice's page opens on gateway b just as a, where her page
    /// closed, has found no page of hers elsewhere and is about to sign her off. Her page on b holds her
    /// presence before it shows any state, so a's second look, once its `offline` is confirmed, finds it and
    /// sets her status back to the one a last relayed.
    @Test func aPageThatOpensElsewhereWhileTheAgentIsSignedOffGetsTheStatusBack() async throws {
        try await TestBroker.withDedicatedNode(label: "gateway-race") { node in
            let (admin, commands) = try await Self.adminWatchingCommands(node)
            let alice = try AgentID("alice")
            let identity = AgentIdentity(desk: try DeskID("gwtest"), agent: alice, name: "Alice")
            let (signingOff, signOffReached) = AsyncStream<Void>.makeStream()
            let (released, release) = AsyncStream<Void>.makeStream()
            let holdSignOff: @Sendable (AgentIdentity) async -> Void = { _ in
                signOffReached.yield()
                for await _ in released { break }
            }
            try await withGateway(node: node, instance: "a", beforeSignOff: holdSignOff) { portA, _ in
                try await withGateway(node: node, instance: "b") { portB, _ in
                    let onA = PageClient(url: Self.alicePage(portA))
                    _ = try await commands.next { $0.properties.type == "agent.sync" }
                    let online = WorkstationEvent(
                        desk: identity.desk, agent: alice, seq: 1, at: Instant(millisecondsSinceEpoch: 1_800_000_000_000),
                        body: .statusChanged(status: .online, reason: .command))
                    try await admin.publisher(confirmWindow: 1).publish(
                        try WireCodec.outgoing(online, id: try MessageID("ws-gwtest-alice-1")))
                    _ = try await onA.frame { $0.contains(#""type":"status.changed""#) }

                    // a's grace period ends, and it finds no page of alice's elsewhere.
                    await onA.close()
                    _ = try await firstElement(of: signingOff, "gateway a to sign alice off")

                    // Her page opens on b: b holds her presence before it asks for her state.
                    let onB = PageClient(url: Self.alicePage(portB))
                    _ = try await commands.next { $0.properties.type == "agent.sync" }
                    let presence = try await admin.queueStatus(GatewayBroker.presenceQueueName(for: identity))
                    #expect(presence?.consumerCount == 1)

                    release.yield()
                    let offline = try await commands.next { $0.properties.type == "agent.status" }
                    #expect(offline.message.body == .agentStatus(agent: alice, status: .offline))
                    let back = try await commands.next { $0.properties.type == "agent.status" }
                    #expect(back.message.body == .agentStatus(agent: alice, status: .online))
                    await onB.close()
                }
            }
            await admin.close()
        }
    }

    /// Publishes a marker command and expects no `agent.status` on `switchboard.in` before it: whatever
    /// was published before the marker reaches the queue before it.
    private static func expectNoStatusCommandBeforeAMarker(_ admin: AMQPConnection, _ commands: CommandQueue) async throws {
        let id = "marker-\(UUID().uuidString.prefix(8))"
        let marker = try WireCodec.outgoing(
            InboundMessage(
                id: try MessageID(id), desk: try DeskID("gwtest"), at: Instant(millisecondsSinceEpoch: 1_800_000_000_000),
                body: .agentSync(agent: try AgentID("bob"))))
        try await admin.publisher(confirmWindow: 1).publish(marker)
        let next = try await commands.next { $0.properties.type == "agent.status" || $0.properties.messageID == id }
        #expect(next.delivery.properties.messageID == id, "published before the marker: \(next.message.body)")
    }

    /// An administrator's connection to `node`, and a queue that collects every command on `switchboard.in`.
    private static func adminWatchingCommands(_ node: TestBroker) async throws -> (AMQPConnection, CommandQueue) {
        let admin = try await AMQPConnection.connect(
            AMQPConfiguration(url: node.url(user: "switchboard", password: "switchboard")), logger: Logger(label: "test.admin"))
        return (admin, try await CommandQueue(connection: admin))
    }

    /// Runs the gateway (its broker side and its HTTP server) as the `switchboard-gateway` user of the
    /// deploy definitions, and `body` with its port and its agents once it is connected.
    private func withGateway(
        node: TestBroker, instance: String = "test", graceMilliseconds: Int = Self.graceMilliseconds,
        beforeSignOff: @escaping @Sendable (AgentIdentity) async -> Void = { _ in },
        _ body: (Int, SignedInAgents) async throws -> Void
    ) async throws {
        let logger = Logger(label: "test.gateway")
        let tokens = try AgentTokens(entries: [
            .init(
                token: Self.aliceToken,
                identity: AgentIdentity(desk: try DeskID("gwtest"), agent: try AgentID("alice"), name: "Alice")),
            .init(
                token: Self.bobToken,
                identity: AgentIdentity(desk: try DeskID("gwtest"), agent: try AgentID("bob"), name: "Bob")),
        ])
        let broker = GatewayBroker(
            amqp: try AMQPConfiguration(url: node.url(user: "switchboard-gateway", password: "change-me")),
            instanceName: instance, graceMilliseconds: graceMilliseconds, logger: logger)
        let metrics = GatewayMetrics()
        let agents = SignedInAgents(
            broker: broker, settings: .init(graceMs: Milliseconds(graceMilliseconds)), metrics: metrics, logger: logger,
            beforeSignOff: beforeSignOff)
        let service = GatewayService(broker: broker, agents: agents)
        let (ports, portContinuation) = AsyncStream<Int>.makeStream()
        let server = GatewayServer.application(
            host: "127.0.0.1", port: 0,
            dependencies: .init(
                tokens: tokens, agents: agents, broker: broker, health: service, metrics: metrics,
                registry: PrometheusCollectorRegistry(), graceMilliseconds: graceMilliseconds),
            logger: logger, onServerRunning: { portContinuation.yield($0) })
        let group = ServiceGroup(services: [service, server], logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let port = try await firstElement(of: ports, "the gateway's port")
            try await waitUntil("the gateway is connected to the broker") { service.readiness() == .healthy }
            do {
                try await body(port, agents)
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }
}

/// The status of a plain GET.
func httpStatus(_ url: String) async throws -> Int {
    let (_, response) = try await URLSession.shared.data(from: try #require(URL(string: url)))
    return try #require(response as? HTTPURLResponse).statusCode
}

/// Waits until `condition` holds, polling, and fails after `timeout`.
func waitUntil(
    _ description: String, timeout: Duration = .seconds(30), _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    Issue.record("timed out after \(timeout) waiting until \(description)")
    throw CancellationError()
}

/// A queue bound to `switchboard.in` with `#`, collecting every command published there.
final class CommandQueue: Sendable {
    struct Command: Sendable {
        var delivery: AMQPDelivery
        var message: InboundMessage
    }

    private let received = Arrivals<AMQPDelivery>()
    private let pump: Task<Void, any Error>

    init(connection: AMQPConnection) async throws {
        let name = "gateway-test-in-\(UUID().uuidString.prefix(8))"
        try await connection.declare(Topology(
            queues: [Topology.Queue(name, autoDelete: true)],
            bindings: [Topology.Binding(from: ContractExchange.inbound.rawValue, to: .queue(name), routingKey: "#")]))
        let consumer = try await connection.consume(queue: name, prefetch: 100)
        let received = self.received
        pump = Task {
            for try await delivery in consumer {
                try delivery.ack()
                received.append(delivery)
            }
        }
    }

    deinit {
        pump.cancel()
    }

    /// The next command, in arrival order, that satisfies `predicate`; the ones before it are passed over.
    func next(timeout: Duration = .seconds(30), _ predicate: @escaping (AMQPDelivery) -> Bool) async throws -> Command {
        let delivery = try await received.next(
            "a matching command reaches switchboard.in", timeout: timeout, predicate)
        let message = try WireCodec.decodeInbound(
            Data(delivery.body), properties: GatewayBroker.wireProperties(of: delivery))
        return Command(delivery: delivery, message: message)
    }
}

/// The agent page's WebSocket, played by `WebSocketClient`.
final class PageClient: Sendable {
    private let frames = Arrivals<String>()
    private let outgoing: AsyncStream<String>.Continuation
    private let connection: Task<Void, any Error>

    init(url: String) {
        let (stream, outgoing) = AsyncStream<String>.makeStream()
        self.outgoing = outgoing
        let frames = self.frames
        connection = Task {
            try await WebSocketClient.connect(url: url, logger: Logger(label: "test.page")) { inbound, outbound, _ in
                try await withThrowingTaskGroup(of: Void.self) { tasks in
                    tasks.addTask {
                        for try await message in inbound.messages(maxSize: 1 << 20) {
                            if case .text(let text) = message { frames.append(text) }
                        }
                    }
                    tasks.addTask {
                        for await text in stream { try await outbound.write(.text(text)) }
                    }
                    // Either the server closed, or the test closed the page by ending `stream`.
                    try await tasks.next()
                    tasks.cancelAll()
                }
            }
        }
    }

    func send(_ text: String) {
        outgoing.yield(text)
    }

    /// Closes the socket and waits until it is closed.
    func close() async {
        outgoing.finish()
        _ = await connection.result
    }

    /// The next frame, in arrival order, that satisfies `predicate`.
    func frame(timeout: Duration = .seconds(30), _ predicate: @escaping (String) -> Bool) async throws -> String {
        try await frames.next("a matching frame reaches the page", timeout: timeout, predicate)
    }
}

/// What arrived, in order, and how far the test has read it.
final class Arrivals<Item: Sendable>: Sendable {
    private struct State {
        var items: [Item] = []
        var read = 0
    }

    private let state = Mutex(State())

    func append(_ item: Item) {
        state.withLock { $0.items.append(item) }
    }

    /// The next item after the last one returned that satisfies `predicate`; those before it are passed over.
    func next(_ description: String, timeout: Duration, _ predicate: @escaping (Item) -> Bool) async throws -> Item {
        var found: Item?
        try await waitUntil(description, timeout: timeout) {
            found = state.withLock { state in
                guard let index = state.items.indices.dropFirst(state.read).first(where: { predicate(state.items[$0]) })
                else { return nil }
                state.read = index + 1
                return state.items[index]
            }
            return found != nil
        }
        return try #require(found)
    }
}
