import SwitchboardAMQP
import Testing

struct ConfigurationTests {
    @Test func readsEveryPartOfTheURL() throws {
        let configuration = try AMQPConfiguration(url: "amqp://sb%40desk:p%3Ass@broker.example:5673/switch%2Fboard?heartbeat=15")
        #expect(configuration.user == "sb@desk")
        #expect(configuration.password == "p:ss")
        #expect(configuration.host == "broker.example")
        #expect(configuration.port == 5673)
        #expect(configuration.virtualHost == "switch/board")
        #expect(configuration.heartbeatSeconds == 15)
        #expect(!configuration.useTLS)
    }

    @Test func fillsInTheDefaults() throws {
        let plain = try AMQPConfiguration(url: "amqp://host")
        #expect(plain.port == 5672)
        #expect(plain.user == "guest" && plain.password == "guest")
        #expect(plain.virtualHost == "/")
        let tls = try AMQPConfiguration(url: "amqps://host/")
        #expect(tls.useTLS)
        #expect(tls.port == 5671)
    }

    @Test func theDefaultVirtualHostIsWrittenPercentEncoded() throws {
        #expect(try AMQPConfiguration(url: "amqp://u:p@h/%2F").virtualHost == "/")
    }

    @Test func readsTheTLSSettingsFromTheQuery() throws {
        let verified = try AMQPConfiguration(
            url: "amqps://h/v?cacertfile=/etc/ca.pem&certfile=/etc/client.pem&keyfile=/etc/client-key.pem&verify=verify_peer")
        #expect(verified.tls.caCertificateFile == "/etc/ca.pem")
        #expect(verified.tls.clientCertificateFile == "/etc/client.pem")
        #expect(verified.tls.clientKeyFile == "/etc/client-key.pem")
        #expect(verified.tls.verifyPeer && verified.tls.verifyHostname)
        let defaults = try AMQPConfiguration(url: "amqps://h/v")
        #expect(defaults.tls == AMQPConfiguration.TLS())
        #expect(defaults.tls.verifyPeer && defaults.tls.verifyHostname)
        let unchecked = try AMQPConfiguration(url: "amqps://h/v?verify=verify_none")
        #expect(!unchecked.tls.verifyPeer && !unchecked.tls.verifyHostname)
    }

    @Test(arguments: [
        "http://host/vhost", "amqp://host:0/v", "amqp://host/a/b", "amqp://host/v?heartbeat=soon", "amqp://host/v?colour=blue",
        // TLS settings without TLS, half a client certificate, an unknown verify mode, an empty file name.
        "amqp://host/v?cacertfile=/etc/ca.pem", "amqps://host/v?certfile=/etc/client.pem", "amqps://host/v?keyfile=/etc/k.pem",
        "amqps://host/v?verify=sometimes", "amqps://host/v?cacertfile=",
    ])
    func rejectsWhatItCannotUse(url: String) {
        #expect(throws: AMQPError.self) { try AMQPConfiguration(url: url) }
    }

    @Test func theRedactedFormLeavesOutThePassword() throws {
        let configuration = try AMQPConfiguration(url: "amqp://u:secret@h:1/v")
        #expect(!configuration.redactedDescription.contains("secret"))
    }

    @Test func backoffDoublesUpToItsCap() {
        let backoff = ReconnectBackoff(initialDelay: .milliseconds(100), maximumDelay: .seconds(1))
        let delays = (0..<7).map { backoff.delay(afterFailedAttempts: $0) }
        #expect(delays == [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .seconds(1), .seconds(1), .seconds(1)])
        #expect(backoff.delay(afterFailedAttempts: 10_000) == .seconds(1))
    }

    @Test func queueFieldsBecomeTheirArguments() {
        let queue = Topology.Queue(
            "shard-0", kind: .quorum, singleActiveConsumer: true, deliveryLimit: 5, deadLetterExchange: "dead",
            deadLetterStrategy: .atLeastOnce, maxLengthBytes: 1024, overflow: .rejectPublish, arguments: ["x-custom": 1])
        #expect(queue.declarationArguments == [
            "x-queue-type": "quorum", "x-single-active-consumer": true, "x-delivery-limit": 5,
            "x-dead-letter-exchange": "dead", "x-dead-letter-strategy": "at-least-once",
            "x-max-length-bytes": 1024, "x-overflow": "reject-publish", "x-custom": 1,
        ])
        let stream = Topology.Queue("log", kind: .stream, maxAge: "7D")
        #expect(stream.declarationArguments == ["x-queue-type": "stream", "x-max-age": "7D"])
    }
}
