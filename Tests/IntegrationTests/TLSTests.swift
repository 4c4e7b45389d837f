import Foundation
import Logging
import SwitchboardAMQP
import SwitchboardTestSupport
import Testing

/// `amqps://` against a node's TLS listener, whose certificate names `localhost` and is signed by the
/// node's own CA (scripts/rabbitmq-node.sh, SB_AMQPS_PORT). One at a time: a test sets `SSL_CERT_FILE`.
@Suite(.sharedTLSBroker, .serialized)
struct TLSTests {
    private func url(host: String = "localhost", query: String) throws -> String {
        let broker = try TestBroker.shared
        let port = try #require(broker.amqpsPort)
        return "amqps://switchboard:switchboard@\(host):\(port)/switchboard?\(query)"
    }

    private func connect(_ url: String, name: String) async throws -> AMQPConnection {
        var configuration = try AMQPConfiguration(url: url)
        configuration.connectionName = name
        configuration.connectTimeout = .seconds(10)
        return try await AMQPConnection.connect(configuration, logger: Logger(label: "switchboard.test.\(name)"))
    }

    /// The error a connection attempt ends with, which must be a TLS failure.
    private func tlsFailure(_ url: String) async throws -> String {
        let error = await #expect(throws: AMQPError.self) { try await connect(url, name: "tls-refused") }
        guard case .tls(let reason)? = error else {
            Issue.record("expected a TLS failure, got \(String(describing: error))")
            return ""
        }
        return reason
    }

    @Test func aVerifiedConnectionWithAClientCertificateCarriesConfirmedBurstsAndLargeMessages() async throws {
        let broker = try TestBroker.shared
        let query = "cacertfile=\(broker.tlsFile("ca.pem"))&certfile=\(broker.tlsFile("client.pem"))"
            + "&keyfile=\(broker.tlsFile("client-key.pem"))&verify=verify_peer"
        let connection = try await connect(try url(query: query), name: "tls-traffic")
        let queue = uniqueName("tls")
        try await connection.declare(Topology(queues: [.init(queue, kind: .quorum)]))
        let consumer = try await connection.consume(queue: queue, prefetch: 500)
        let publisher = try await connection.publisher(confirmWindow: 256)

        // Concurrent publishers fill the confirm window, so frames of many messages go out together.
        let total = 5_000
        async let received = receive(total + 1, from: consumer, timeout: .seconds(120))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<50 {
                group.addTask {
                    for number in stride(from: worker, to: total, by: 50) {
                        try await publisher.publish(
                            body(number: number), exchange: "", routingKey: queue, properties: persistentProperties(number: number))
                    }
                }
            }
            try await group.waitForAll()
        }
        let large = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        try await publisher.publish(large, exchange: "", routingKey: queue, properties: persistentProperties(number: total))
        let deliveries = try await received
        #expect(Set(deliveries.compactMap(messageNumber)) == Set(0...total))
        #expect(deliveries.first { $0.properties.messageID == "\(total)" }?.body == large)
        // One that cannot be encoded is refused on its own; the connection goes on.
        await #expect(throws: AMQPError.protocolError("an exchange name or routing key longer than 255 bytes cannot be published")) {
            try await publisher.publish([1], exchange: "", routingKey: String(repeating: "k", count: 256), properties: .init())
        }
        for delivery in deliveries where delivery.properties.messageID != "\(total)" {
            #expect(delivery.body == body(number: Int(delivery.properties.messageID ?? "") ?? -1))
        }
        #expect(connection.state == .connected)
        await connection.close()
    }

    @Test func aBrokerThatIsNotTrustedOrNotNamedIsRefusedWithTheReason() async throws {
        let broker = try TestBroker.shared
        // Without cacertfile, the system's authorities are trusted, and the node's own CA is not one of them.
        let untrusted = try await tlsFailure(try url(query: "heartbeat=5"))
        #expect(untrusted.contains("not signed by a trusted certificate authority"), "\(untrusted)")
        // The certificate names localhost, not 127.0.0.1.
        let misnamed = try await tlsFailure(try url(host: "127.0.0.1", query: "cacertfile=\(broker.tlsFile("ca.pem"))"))
        #expect(misnamed.contains("does not name the host"), "\(misnamed)")
        // TLS against the plain listener.
        let plain = "amqps://switchboard:switchboard@localhost:\(broker.amqpPort)/switchboard?cacertfile=\(broker.tlsFile("ca.pem"))"
        let handshake = try await tlsFailure(plain)
        #expect(handshake.contains("handshake failed"), "\(handshake)")
        let missingFile = try await tlsFailure(try url(query: "cacertfile=/nonexistent/ca.pem"))
        #expect(missingFile.contains("/nonexistent/ca.pem"), "\(missingFile)")

        // verify_none checks nothing: encrypted, but open to whoever answers.
        let unchecked = try await connect(try url(host: "127.0.0.1", query: "verify=verify_none"), name: "tls-unchecked")
        #expect(unchecked.state == .connected)
        await unchecked.close()
    }

    /// Without `cacertfile`, the system's authorities are trusted: OpenSSL's default locations, which
    /// `SSL_CERT_FILE` replaces, here with the node's CA.
    @Test func withoutACAFileTheSystemsAuthoritiesAreTrusted() async throws {
        let broker = try TestBroker.shared
        setenv("SSL_CERT_FILE", broker.tlsFile("ca.pem"), 1)
        defer { unsetenv("SSL_CERT_FILE") }
        let connection = try await connect(try url(query: "verify=verify_peer"), name: "tls-system-trust")
        #expect(connection.state == .connected)
        await connection.close()
    }
}
