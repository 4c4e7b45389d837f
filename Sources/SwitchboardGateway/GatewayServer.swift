import Foundation
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOWebSocket
import Prometheus
import SwitchboardCommon
import SwitchboardService

/// The gateway's one HTTP server: the agent page, its WebSocket `/ws?token=…`, `/session?token=…` (who a
/// token signs in, so the page can tell a bad link from a network failure), `/health/live`,
/// `/health/ready` and `/metrics`.
public enum GatewayServer {
    public struct Dependencies: Sendable {
        public var tokens: AgentTokens
        public var agents: SignedInAgents
        public var broker: GatewayBroker
        public var health: any HealthReporting
        public var metrics: GatewayMetrics
        public var registry: PrometheusCollectorRegistry
        public var graceMilliseconds: Int
        public var heartbeatMilliseconds: Int
        public var now: @Sendable () -> Instant

        public init(
            tokens: AgentTokens, agents: SignedInAgents, broker: GatewayBroker, health: any HealthReporting,
            metrics: GatewayMetrics, registry: PrometheusCollectorRegistry, graceMilliseconds: Int,
            heartbeatMilliseconds: Int = GatewayConfiguration.defaultHeartbeatMilliseconds,
            now: @escaping @Sendable () -> Instant = Instant.wallClock
        ) {
            self.tokens = tokens
            self.agents = agents
            self.broker = broker
            self.health = health
            self.metrics = metrics
            self.registry = registry
            self.graceMilliseconds = graceMilliseconds
            self.heartbeatMilliseconds = heartbeatMilliseconds
            self.now = now
        }
    }

    /// What the page shows when its link's token is not in the tokens file.
    public static let invalidTokenMessage = "This sign-in link is not valid"

    /// The close code of a page refused because its agent has too many open (an application code, 4000–4999):
    /// the page stops reconnecting and says why.
    public static let tooManyPagesCloseCode: UInt16 = 4008

    /// A larger WebSocket message, in one frame or several, closes the socket with code 1009 (message too
    /// big); one over `PageCommand.maxFrameBytes` but within this gets a readable error instead.
    static let maxWebSocketMessageBytes = 64 * 1024

    public static func application(
        host: String, port: Int, dependencies: Dependencies, logger: Logger,
        onServerRunning: @escaping @Sendable (_ port: Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        Application(
            router: router(dependencies),
            server: .http1WebSocketUpgrade(
                webSocketRouter: webSocketRouter(dependencies),
                // A ping as often as the page's heartbeat: the socket of a page that went away silently is closed
                // within two heartbeats, before the page itself gives up after three and opens another (which
                // would otherwise count against `agent.pages` alongside the dead one).
                configuration: .init(ws: .init(
                    maxFrameSize: maxWebSocketMessageBytes,
                    autoPing: .enabled(timePeriod: .milliseconds(dependencies.heartbeatMilliseconds))))),
            configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in
                await onServerRunning(channel.localAddress?.port ?? port)
            },
            logger: logger
        )
    }

    static func router(_ dependencies: Dependencies) -> Router<BasicWebSocketRequestContext> {
        let router = Router(context: BasicWebSocketRequestContext.self)
        router.get("/") { _, _ in page(PackageResources.index_html, contentType: "text/html; charset=utf-8") }
        router.get("/agent.css") { _, _ in page(PackageResources.agent_css, contentType: "text/css; charset=utf-8") }
        router.get("/agent.js") { _, _ in
            page(PackageResources.agent_js, contentType: "text/javascript; charset=utf-8")
        }
        // The page asks here first, and opens /ws only for a token that signs someone in: a refused sign-in
        // from the page is counted here, one from another client at /ws.
        router.get("/session") { request, _ -> EditedResponse<String> in
            guard let identity = signedIn(request, dependencies) else {
                dependencies.metrics.rejected(.invalidToken)
                return EditedResponse(
                    status: .unauthorized, headers: [.contentType: "application/json"],
                    response: PageMessages.error(invalidTokenMessage))
            }
            return EditedResponse(
                headers: [.contentType: "application/json", .cacheControl: "no-store"],
                response: hello(identity, dependencies))
        }
        OperationsServer.addRoutes(to: router, health: dependencies.health, registry: dependencies.registry)
        // Reached by a request to /ws that was not upgraded: says why.
        router.get("/ws") { request, _ -> EditedResponse<String> in
            guard signedIn(request, dependencies) != nil else {
                dependencies.metrics.rejected(.invalidToken)
                throw HTTPError(.unauthorized, message: invalidTokenMessage)
            }
            guard dependencies.broker.isConnected else {
                throw HTTPError(.serviceUnavailable, message: "The gateway is not connected to the switchboard yet")
            }
            throw HTTPError(.badRequest, message: "Open /ws as a WebSocket")
        }
        return router
    }

    /// Only the upgrade of `/ws`: a request it does not upgrade goes on to `router`'s `GET /ws`.
    static func webSocketRouter(_ dependencies: Dependencies) -> Router<BasicWebSocketRequestContext> {
        let router = Router(context: BasicWebSocketRequestContext.self)
        router.ws("/ws") { request, _ in
            guard signedIn(request, dependencies) != nil, dependencies.broker.isConnected else { return .dontUpgrade }
            return .upgrade([:])
        } onUpgrade: { inbound, outbound, context in
            guard let identity = signedIn(context.request, dependencies) else { return }
            try await PageSocket(identity: identity, dependencies: dependencies, logger: context.logger)
                .serve(inbound: inbound, outbound: outbound)
        }
        return router
    }

    static func hello(_ identity: AgentIdentity, _ dependencies: Dependencies) -> String {
        PageMessages.hello(
            identity, graceMilliseconds: dependencies.graceMilliseconds,
            heartbeatMilliseconds: dependencies.heartbeatMilliseconds, colleagues: dependencies.tokens.colleagues(of: identity))
    }

    private static func signedIn(_ request: Request, _ dependencies: Dependencies) -> AgentIdentity? {
        guard let token = request.uri.queryParameters["token"] else { return nil }
        return dependencies.tokens.identity(forToken: String(token))
    }

    private static func page(_ bytes: [UInt8], contentType: String) -> EditedResponse<String> {
        EditedResponse(
            headers: [.contentType: contentType, .cacheControl: "no-cache"],
            response: String(decoding: bytes, as: UTF8.self))
    }
}

/// One open WebSocket of one agent: frames from the agent's session go out in order; the page's
/// commands are validated and published on its behalf.
struct PageSocket {
    let identity: AgentIdentity
    let dependencies: GatewayServer.Dependencies
    let logger: Logger

    /// Throws what ended the page's side (a message too big, a broken connection), so the socket closes
    /// with the code that says so.
    func serve(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) async throws {
        let (outbox, frames) = SocketOutbox.make()
        outbox.send(GatewayServer.hello(identity, dependencies))
        let socket: SocketID
        switch await dependencies.agents.open(identity, outbox: outbox) {
        case .opened(let opened):
            socket = opened
        case .shuttingDown:
            try? await outbound.close(.goingAway, reason: "the gateway is shutting down")
            return
        case .tooManyPages(let limit):
            dependencies.metrics.rejected(.tooManyPages)
            logger.warning(
                "a page was refused: too many pages of the agent open",
                metadata: ["desk": "\(identity.desk)", "agent": "\(identity.agent)", "limit": "\(limit)"])
            try? await outbound.write(.text(PageMessages.error(
                "You have \(limit) pages of the switchboard open already. Close one, then reload this page.")))
            try? await outbound.close(.unknown(GatewayServer.tooManyPagesCloseCode), reason: "too many pages open")
            return
        }
        let failure = await withTaskGroup(of: (any Error)?.self) { group in
            group.addTask {
                for await frame in frames {
                    do {
                        try await outbound.write(.text(frame))
                    } catch {
                        break
                    }
                }
                // The session closed this socket (sign-off, shutdown, a page too far behind).
                try? await outbound.close(.normalClosure, reason: nil)
                return nil
            }
            group.addTask {
                // The page cannot see WebSocket pings: without something to read it could not tell a connection
                // that died silently (a laptop that slept, a proxy that dropped it) from a quiet one.
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(dependencies.heartbeatMilliseconds))
                    outbox.send(PageMessages.heartbeat)
                }
                return nil
            }
            group.addTask {
                var rate = CommandRate(now: .now)
                do {
                    for try await message in inbound.messages(maxSize: GatewayServer.maxWebSocketMessageBytes) {
                        guard rate.take(at: .now) else {
                            let text: String? = if case .text(let text) = message { text } else { nil }
                            dependencies.metrics.rejected(.tooManyCommands)
                            outbox.send(PageMessages.error(
                                "Too many commands at once; the last one was not taken. Try again in a moment.",
                                reference: text.flatMap(PageCommand.reference(in:))))
                            continue
                        }
                        switch message {
                        case .text(let text):
                            await handle(text, outbox: outbox)
                        case .binary:
                            refuse(PageCommandError("send commands as JSON text frames"), outbox: outbox)
                        }
                    }
                } catch {
                    logger.debug("a page's socket failed", metadata: ["agent": "\(identity.agent)", "error": "\(error)"])
                    return error
                }
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        await dependencies.agents.close(socket, of: identity)
        if let failure { throw failure }
    }

    private func handle(_ text: String, outbox: SocketOutbox) async {
        let (reference, parsed) = PageCommand.read(text)
        let command: PageCommand
        switch parsed {
        case .success(let parsed):
            command = parsed
        case .failure(let error):
            refuse(error, reference: reference, outbox: outbox)
            return
        }
        let message = command.inboundMessage(for: identity, id: .random(), at: dependencies.now())
        do {
            try await dependencies.broker.publish(message)
            dependencies.metrics.commandPublished(type: message.body.type)
        } catch {
            dependencies.metrics.rejected(.publishFailed)
            logger.error(
                "a page's command could not be published",
                metadata: ["agent": "\(identity.agent)", "type": "\(message.body.type)", "error": "\(error)"])
            outbox.send(PageMessages.error("The switchboard did not take the command; please try again", reference: reference))
        }
    }

    private func refuse(_ error: PageCommandError, reference: String? = nil, outbox: SocketOutbox) {
        dependencies.metrics.rejected(.invalidCommand)
        logger.warning(
            "a page sent an invalid command",
            metadata: ["desk": "\(identity.desk)", "agent": "\(identity.agent)", "error": "\(error.message)"])
        outbox.send(PageMessages.error(error.message, reference: reference))
    }
}

/// The gateway's own JSON messages to the page (everything else it sends is a workstation event as published).
enum PageMessages {
    static func hello(
        _ identity: AgentIdentity, graceMilliseconds: Int, heartbeatMilliseconds: Int, colleagues: [AgentIdentity]
    ) -> String {
        encode(Hello(
            desk: identity.desk.rawValue, agent: identity.agent.rawValue, name: identity.name, graceMs: graceMilliseconds,
            heartbeatMs: heartbeatMilliseconds,
            colleagues: colleagues.map { Colleague(agent: $0.agent.rawValue, name: $0.name) }))
    }

    /// `reference`: the `ref` of the page's command it answers, when the command had one.
    static func error(_ message: String, reference: String? = nil) -> String {
        encode(ErrorMessage(message: message, ref: reference))
    }

    static let heartbeat = encode(Heartbeat())

    private struct Hello: Encodable {
        var kind = "hello"
        var desk: String
        var agent: String
        var name: String
        var graceMs: Int
        /// How often the page hears at least a heartbeat.
        var heartbeatMs: Int
        /// The desk's other agents this gateway signs in: the page suggests them for a transfer.
        var colleagues: [Colleague]
    }

    private struct Colleague: Encodable {
        var agent: String
        var name: String
    }

    private struct ErrorMessage: Encodable {
        var kind = "error"
        var message: String
        var ref: String?
    }

    private struct Heartbeat: Encodable {
        var kind = "heartbeat"
    }

    private static func encode(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // These values hold strings and integers only, which always encode.
        return String(decoding: (try? encoder.encode(value)) ?? Data(), as: UTF8.self)
    }
}
