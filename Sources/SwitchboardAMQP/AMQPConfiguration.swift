import Foundation

/// Everything needed to reach one broker, and how patient to be with it.
public struct AMQPConfiguration: Sendable, Hashable {
    /// TLS settings used when `useTLS` is true (`amqps://`).
    public struct TLS: Sendable, Hashable {
        /// PEM file with the certificate authorities that may sign the broker's certificate.
        public var caCertificateFile: String?
        /// PEM client certificate and key, for brokers that ask for one.
        public var clientCertificateFile: String?
        public var clientKeyFile: String?
        /// Check the broker's certificate chain against the CA file.
        public var verifyPeer: Bool
        /// Check that the broker's certificate names the host we connected to.
        public var verifyHostname: Bool

        public init(
            caCertificateFile: String? = nil,
            clientCertificateFile: String? = nil,
            clientKeyFile: String? = nil,
            verifyPeer: Bool = true,
            verifyHostname: Bool = true
        ) {
            self.caCertificateFile = caCertificateFile
            self.clientCertificateFile = clientCertificateFile
            self.clientKeyFile = clientKeyFile
            self.verifyPeer = verifyPeer
            self.verifyHostname = verifyHostname
        }
    }

    public var host: String
    public var port: Int
    public var user: String
    public var password: String
    public var virtualHost: String
    /// Seconds between heartbeats; 0 turns them off.
    public var heartbeatSeconds: Int
    public var useTLS: Bool
    public var tls: TLS
    /// Shown in the management UI, to tell connections apart.
    public var connectionName: String?
    /// Bound on TCP connect plus the AMQP handshake.
    public var connectTimeout: Duration
    /// Bound on each synchronous broker call (declare, consume, channel open).
    public var operationTimeout: Duration
    /// How long a publish may wait to be sent while the broker blocks publishing (resource alarm).
    /// RabbitMQ blocks a connection at its first publish under the alarm; that publish, and any
    /// already sent, stay unconfirmed until the alarm clears.
    public var blockedPublishTimeout: Duration
    /// How long an operation may wait for the connection to come back.
    public var reconnectWaitTimeout: Duration
    public var reconnectBackoff: ReconnectBackoff

    /// Reads `amqp://user:password@host:port/vhost?heartbeat=10` (or `amqps://`).
    /// User, password and vhost are percent-decoded, so the vhost `/` is written `%2F`.
    /// Missing parts default to guest/guest, localhost, 5672 (5671 for amqps) and vhost `/`.
    /// Also understood in the query: `connection_timeout` (milliseconds), and for `amqps://` the TLS
    /// settings under the names RabbitMQ's URI query parameters give them: `cacertfile` (PEM; without it,
    /// the system's certificate authorities), `certfile` and `keyfile` (a client certificate, both or
    /// neither) and `verify` (`verify_peer`, the default, checks the broker's certificate chain and that it
    /// names the host; `verify_none` checks nothing).
    public init(url: String) throws(AMQPError) {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased() else {
            throw .invalidURL(url: url, reason: "not a URL")
        }
        switch scheme {
        case "amqp": useTLS = false
        case "amqps": useTLS = true
        default: throw .invalidURL(url: url, reason: "scheme must be amqp or amqps, not '\(scheme)'")
        }
        host = components.host.flatMap { $0.isEmpty ? nil : $0 } ?? "localhost"
        if let port = components.port {
            guard (1...65535).contains(port) else { throw .invalidURL(url: url, reason: "port \(port) is out of range") }
            self.port = port
        } else {
            port = useTLS ? 5671 : 5672
        }
        user = components.user ?? "guest"
        password = components.password ?? "guest"
        let encodedPath = components.percentEncodedPath
        if encodedPath.isEmpty {
            virtualHost = "/"
        } else {
            let withoutSlash = String(encodedPath.dropFirst())
            guard !withoutSlash.contains("/") else {
                throw .invalidURL(url: url, reason: "the vhost must be one path segment; write '/' inside it as %2F")
            }
            guard let decoded = withoutSlash.removingPercentEncoding else {
                throw .invalidURL(url: url, reason: "the vhost is not valid percent-encoding")
            }
            virtualHost = decoded
        }
        heartbeatSeconds = 10
        connectTimeout = .seconds(10)
        var tls = TLS()
        for item in components.queryItems ?? [] {
            if Self.tlsParameters.contains(item.name) {
                guard useTLS else {
                    throw .invalidURL(url: url, reason: "'\(item.name)' is a TLS setting; TLS needs the amqps scheme")
                }
                guard let value = item.value, !value.isEmpty else {
                    throw .invalidURL(url: url, reason: "'\(item.name)' needs a value")
                }
            }
            switch item.name {
            case "heartbeat":
                guard let value = item.value.flatMap(Int.init), value >= 0 else {
                    throw .invalidURL(url: url, reason: "heartbeat must be a whole number of seconds")
                }
                heartbeatSeconds = value
            case "connection_timeout":
                guard let value = item.value.flatMap(Int.init), value > 0 else {
                    throw .invalidURL(url: url, reason: "connection_timeout must be a positive number of milliseconds")
                }
                connectTimeout = .milliseconds(value)
            case "cacertfile":
                tls.caCertificateFile = item.value
            case "certfile":
                tls.clientCertificateFile = item.value
            case "keyfile":
                tls.clientKeyFile = item.value
            case "verify":
                switch item.value {
                case "verify_peer":
                    tls.verifyPeer = true
                    tls.verifyHostname = true
                case "verify_none":
                    tls.verifyPeer = false
                    tls.verifyHostname = false
                default:
                    throw .invalidURL(url: url, reason: "verify must be verify_peer or verify_none")
                }
            default:
                throw .invalidURL(url: url, reason: "unknown query parameter '\(item.name)'")
            }
        }
        guard (tls.clientCertificateFile == nil) == (tls.clientKeyFile == nil) else {
            throw .invalidURL(url: url, reason: "a client certificate needs both certfile and keyfile")
        }
        self.tls = tls
        connectionName = nil
        operationTimeout = .seconds(30)
        blockedPublishTimeout = .seconds(60)
        reconnectWaitTimeout = .seconds(60)
        reconnectBackoff = ReconnectBackoff()
    }

    private static let tlsParameters: Set<String> = ["cacertfile", "certfile", "keyfile", "verify"]

    /// The URL without the password, for logs.
    public var redactedDescription: String {
        "\(useTLS ? "amqps" : "amqp")://\(user)@\(host):\(port)/\(virtualHost)"
    }
}

/// Exponential backoff with a cap and no randomness, so a test can predict every delay.
public struct ReconnectBackoff: Sendable, Hashable {
    public var initialDelay: Duration
    public var maximumDelay: Duration

    public init(initialDelay: Duration = .milliseconds(100), maximumDelay: Duration = .seconds(5)) {
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
    }

    /// The wait before the next attempt after `failedAttempts` consecutive failures
    /// (0 for the first attempt after the connection was lost).
    public func delay(afterFailedAttempts failedAttempts: Int) -> Duration {
        var delay = initialDelay
        for _ in 0..<failedAttempts {
            delay *= 2
            if delay >= maximumDelay { return maximumDelay }
        }
        return min(delay, maximumDelay)
    }
}
