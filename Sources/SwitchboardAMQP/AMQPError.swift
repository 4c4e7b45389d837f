/// Everything this layer reports. Each case says what went wrong in words an operator can act on.
public enum AMQPError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The connection URL could not be understood.
    case invalidURL(url: String, reason: String)
    /// Nothing answered at host:port (refused, unreachable, name not resolved, timed out).
    case brokerUnreachable(host: String, port: Int, reason: String)
    /// The broker refused the user name or password (ACCESS_REFUSED during login).
    case authenticationFailed(user: String, detail: String)
    /// The virtual host does not exist or the user may not use it (NOT_ALLOWED on connection.open).
    case virtualHostNotAllowed(vhost: String, detail: String)
    /// The broker refused an operation on a resource (channel closed with 403).
    case accessRefused(operation: String, detail: String)
    /// A declaration clashes with what exists, or an operation's precondition failed (406).
    case preconditionFailed(operation: String, detail: String)
    /// A named exchange or queue does not exist (404).
    case notFound(operation: String, detail: String)
    /// The broker closed a channel for another reason.
    case channelClosed(operation: String, code: UInt16, detail: String)
    /// The broker closed the connection (for example CONNECTION_FORCED on shutdown).
    case connectionClosedByBroker(code: UInt16, detail: String)
    /// The connection failed in the middle of an operation; the operation's outcome is unknown.
    /// For a publish: the broker did not confirm it, so the caller may publish it again.
    case connectionLost(reason: String)
    /// The broker refused responsibility for a published message (basic.nack).
    case publishNacked(exchange: String, routingKey: String)
    /// A mandatory message could not be routed to any queue (basic.return).
    case publishReturned(exchange: String, routingKey: String, code: UInt16, detail: String)
    /// The broker blocked publishing (memory or disk alarm) for longer than the configured wait.
    case blockedTimeout(waited: Duration)
    /// The connection was down for longer than the configured wait (zero once told to stop waiting for
    /// reconnects).
    case notConnected(waited: Duration, lastError: String)
    /// The delivery came over a connection that has since been lost: it cannot be acknowledged,
    /// and the broker delivers the message again.
    case deliveryChannelGone(deliveryTag: UInt64)
    /// The connection was closed by its owner.
    case connectionClosed
    /// The TLS set-up failed (CA file, client certificate, key).
    case tls(reason: String)
    /// After a reconnect, a stream subscription did not get back the last record it had delivered, with
    /// which it resumes: the stream is not the one it was reading (deleted and declared again meanwhile).
    case streamNotResumed(queue: String, offset: Int64, reason: String)
    /// A read that knew the queue or stream held messages (the broker counted them) got none of them within
    /// `waited`: the broker is too busy to answer in time, or another consumer took them.
    case nothingDelivered(queue: String, waited: Duration)
    /// Every channel the broker allows on a connection (its negotiated `channel_max`) is taken: each publisher
    /// and each consumer holds one. Opening another would make the broker close the whole connection.
    case tooManyChannels(limit: Int)
    /// The broker or the library broke the protocol in a way this layer does not handle.
    case protocolError(String)

    public var description: String {
        switch self {
        case .invalidURL(let url, let reason):
            return "invalid AMQP URL '\(url)': \(reason)"
        case .brokerUnreachable(let host, let port, let reason):
            return "cannot connect to the broker at \(host):\(port): \(reason)"
        case .authenticationFailed(let user, let detail):
            return "the broker refused the login of user '\(user)' (wrong user name or password): \(detail)"
        case .virtualHostNotAllowed(let vhost, let detail):
            return "virtual host '\(vhost)' does not exist or is not allowed for this user: \(detail)"
        case .accessRefused(let operation, let detail):
            return "access refused while \(operation): \(detail)"
        case .preconditionFailed(let operation, let detail):
            return "precondition failed while \(operation): \(detail)"
        case .notFound(let operation, let detail):
            return "not found while \(operation): \(detail)"
        case .channelClosed(let operation, let code, let detail):
            return "the broker closed the channel (\(code)) while \(operation): \(detail)"
        case .connectionClosedByBroker(let code, let detail):
            return "the broker closed the connection (\(code)): \(detail)"
        case .connectionLost(let reason):
            return "the connection was lost before the operation completed: \(reason)"
        case .publishNacked(let exchange, let routingKey):
            return "the broker rejected (nack) the message published to '\(exchange)' with key '\(routingKey)'"
        case .publishReturned(let exchange, let routingKey, let code, let detail):
            return "the mandatory message published to '\(exchange)' with key '\(routingKey)' was returned (\(code) \(detail)): no queue is bound for it"
        case .blockedTimeout(let waited):
            return "the broker blocked publishing (resource alarm) for longer than \(waited)"
        case .notConnected(.zero, let lastError):
            return "not connected to the broker, and no longer waiting for it (the connection's owner is stopping); last error: \(lastError)"
        case .notConnected(let waited, let lastError):
            return "not connected to the broker for longer than \(waited); last error: \(lastError)"
        case .deliveryChannelGone(let deliveryTag):
            return "delivery \(deliveryTag) cannot be settled: its connection was lost and the broker will redeliver it"
        case .connectionClosed:
            return "the connection has been closed"
        case .tls(let reason):
            return "TLS set-up failed: \(reason)"
        case .streamNotResumed(let queue, let offset, let reason):
            return "after reconnecting, stream '\(queue)' did not deliver again the last record read before, at "
                + "offset \(offset) (\(reason)): it is not the stream that was being read (deleted and declared "
                + "again while disconnected?), and reading on would skip or misread its records"
        case .nothingDelivered(let queue, let waited):
            return "the broker counted messages in '\(queue)' but delivered none of them within \(waited) "
                + "(the broker is overloaded, or another consumer took them); try again"
        case .tooManyChannels(let limit):
            return "all \(limit) channels the broker allows on this connection are in use (one per publisher and per "
                + "consumer): close some, open another connection, or raise the broker's channel_max"
        case .protocolError(let detail):
            return "AMQP protocol error: \(detail)"
        }
    }
}
