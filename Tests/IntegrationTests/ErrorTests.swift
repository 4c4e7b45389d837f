import Logging
import SwitchboardAMQP
import SwitchboardTestSupport
import Testing

/// Every failure a caller can meet comes back as a typed error whose message names the problem.
@Suite(.sharedBroker)
struct ErrorTests {
    private func connect(_ configuration: AMQPConfiguration) async throws -> AMQPConnection {
        try await AMQPConnection.connect(configuration, logger: Logger(label: "switchboard.test.errors"))
    }

    @Test func wrongPasswordIsReportedAsRefusedLogin() async throws {
        let configuration = try TestBroker.shared.configuration(password: "not-the-password")
        let error = await #expect(throws: AMQPError.self) { try await connect(configuration) }
        guard case .authenticationFailed(let user, let detail)? = error else {
            Issue.record("expected authenticationFailed, got \(String(describing: error))")
            return
        }
        #expect(user == "switchboard")
        #expect(detail.contains("ACCESS_REFUSED"))
        #expect("\(error!)".contains("refused the login of user 'switchboard'"))
    }

    @Test func unknownVirtualHostIsReportedByName() async throws {
        let configuration = try TestBroker.shared.configuration(vhost: "no-such-vhost")
        let error = await #expect(throws: AMQPError.self) { try await connect(configuration) }
        guard case .virtualHostNotAllowed(let vhost, let detail)? = error else {
            Issue.record("expected virtualHostNotAllowed, got \(String(describing: error))")
            return
        }
        #expect(vhost == "no-such-vhost")
        #expect(detail.contains("NOT_ALLOWED"))
        #expect("\(error!)".contains("virtual host 'no-such-vhost'"))
    }

    @Test func brokerDownNamesHostAndPort() async throws {
        // Port 1 (tcpmux) is reserved and has no listener here.
        let unusedPort = 1
        var configuration = try AMQPConfiguration(url: "amqp://switchboard:switchboard@127.0.0.1:\(unusedPort)/switchboard")
        configuration.connectTimeout = .seconds(2)
        let error = await #expect(throws: AMQPError.self) { try await connect(configuration) }
        guard case .brokerUnreachable(let host, let port, _)? = error else {
            Issue.record("expected brokerUnreachable, got \(String(describing: error))")
            return
        }
        #expect(host == "127.0.0.1" && port == unusedPort)
        #expect("\(error!)".contains("127.0.0.1:\(unusedPort)"))
        #expect("\(error!)".contains("refused"))
    }

    @Test func channelErrorsSayWhichResourceAndTheChannelRecovers() async throws {
        let broker = try TestBroker.shared
        let connection = try await broker.connect(name: "channel-errors")
        let queue = uniqueName("clash")
        try await connection.declare(Topology(queues: [.init(queue, kind: .quorum)]))

        // 406: the same name with another type.
        let clash = await #expect(throws: AMQPError.self) {
            try await connection.declare(Topology(queues: [.init(queue, kind: .classic)]))
        }
        guard case .preconditionFailed(let operation, let detail)? = clash else {
            Issue.record("expected preconditionFailed, got \(String(describing: clash))")
            return
        }
        #expect(operation == "declaring queue '\(queue)'")
        #expect(detail.contains("PRECONDITION_FAILED"))

        // 404: consuming from a queue that does not exist.
        let missing = uniqueName("missing")
        let notFound = await #expect(throws: AMQPError.self) { try await connection.consume(queue: missing) }
        guard case .notFound(let consumeOperation, _)? = notFound else {
            Issue.record("expected notFound, got \(String(describing: notFound))")
            return
        }
        #expect(consumeOperation.contains(missing))

        // 404 on a publisher channel: the publish fails, and the publisher keeps working.
        let publisher = try await connection.publisher()
        let unknownExchange = uniqueName("no-exchange")
        let publishError = await #expect(throws: AMQPError.self) {
            try await publisher.publish([1], exchange: unknownExchange, routingKey: "k")
        }
        guard case .notFound(_, let publishDetail)? = publishError else {
            Issue.record("expected notFound, got \(String(describing: publishError))")
            return
        }
        #expect(publishDetail.contains(unknownExchange))
        try await publisher.publish([2], exchange: "", routingKey: queue)

        // A mandatory message nobody takes comes back as an error, not a silent success.
        let returned = await #expect(throws: AMQPError.self) {
            try await publisher.publish([3], exchange: "", routingKey: uniqueName("unbound"), mandatory: true)
        }
        guard case .publishReturned(_, _, let code, _)? = returned else {
            Issue.record("expected publishReturned, got \(String(describing: returned))")
            return
        }
        #expect(code == 312)
        // After all that, the control channel still declares.
        try await connection.declare(Topology(queues: [.init(queue, kind: .quorum)]))
        await connection.close()
    }

    /// A connection opens no channel beyond the broker's channel_max: one more publisher or consumer is refused
    /// with `tooManyChannels`, and everything already open goes on. (Opening it, the broker would close the whole
    /// connection, with every publisher and consumer on it.)
    @Test func aChannelBeyondTheBrokersLimitIsRefusedAndTheConnectionGoesOn() async throws {
        try await TestBroker.withDedicatedNode(label: "channel-max") { broker in
            // Read by each new connection's handshake.
            _ = try await broker.ctl("eval", "application:set_env(rabbit, channel_max, 6).")
            let connection = try await broker.connect(name: "channel-max")
            let queue = uniqueName("channel-max")
            try await connection.declare(Topology(queues: [.init(queue)]))
            // Channel 1 is the connection's own; 2 to 6 are left.
            var publishers: [AMQPPublisher] = []
            for _ in 2...6 { publishers.append(try await connection.publisher()) }
            await #expect(throws: AMQPError.tooManyChannels(limit: 6)) { _ = try await connection.publisher() }
            await #expect(throws: AMQPError.tooManyChannels(limit: 6)) {
                _ = try await connection.consume(queue: queue, prefetch: 1)
            }
            for (number, publisher) in publishers.enumerated() {
                try await publisher.publish(
                    body(number: number), exchange: "", routingKey: queue, properties: persistentProperties(number: number))
            }
            #expect(try await connection.queueStatus(queue)?.messageCount == publishers.count)
            #expect(connection.state == .connected)
            await connection.close()
        }
    }

    @Test func accessRefusedNamesTheResource() async throws {
        let broker = try TestBroker.shared
        let user = uniqueName("limited")
        try await broker.ctl("add_user", user, "limited-password")
        // May configure only queues whose names start with "own-".
        try await broker.ctl("set_permissions", "-p", "switchboard", user, "^own-.*", ".*", ".*")
        let configuration = try broker.configuration(user: user, password: "limited-password")
        let connection = try await connect(configuration)
        let queue = uniqueName("forbidden")
        let error = await #expect(throws: AMQPError.self) {
            try await connection.declare(Topology(queues: [.init(queue)]))
        }
        guard case .accessRefused(let operation, let detail)? = error else {
            Issue.record("expected accessRefused, got \(String(describing: error))")
            return
        }
        #expect(operation == "declaring queue '\(queue)'")
        #expect(detail.contains(queue))
        await connection.close()
    }
}
