/// The answer of one health check.
public enum HealthStatus: Sendable, Equatable {
    case healthy
    /// The reason is short and meant for an operator reading `/health/ready`.
    case unhealthy(reason: String)
}

/// What the health endpoints ask. The shard runtime answers it; tests answer it with a switch.
public protocol HealthReporting: Sendable {
    /// Healthy while the process can still make progress (its AMQP I/O thread is alive).
    func liveness() -> HealthStatus
    /// Healthy only when every configured shard is either active and caught up, or a tailing standby.
    func readiness() -> HealthStatus
}
