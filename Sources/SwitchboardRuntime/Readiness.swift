import Synchronization
import SwitchboardAMQP

/// Thread-safe answers for `/health/ready` and `/health/live`.
public final class Readiness: Sendable {
    /// Where one shard of this instance stands.
    public enum ShardPhase: Hashable, Sendable {
        /// Not subscribed: not yet, or the broker ended a subscription (queue deleted, channel closed).
        case starting
        /// Tailing the journal, ready to take over.
        case standby
        /// Taking over: reading the journal up to its marker.
        case catchingUp
        /// Processing deliveries.
        case active
    }

    private struct State {
        var topologyDeclared = false
        var shards: [Int: ShardPhase] = [:]
        /// Shards whose journal or queue subscription the broker ended: reported `starting` from then on.
        var lostSubscriptions: Set<Int> = []
        var connection: AMQPConnection?
    }

    private let state: Mutex<State>

    init(shards: [Int]) {
        var initial = State()
        for shard in shards { initial.shards[shard] = .starting }
        state = Mutex(initial)
    }

    /// True when the topology is declared and every configured shard is active and caught up, or a tailing standby.
    public var isReady: Bool {
        state.withLock { state in
            state.topologyDeclared && state.lostSubscriptions.isEmpty
                && state.shards.values.allSatisfy { phase in
                    switch phase {
                    case .standby, .active: true
                    case .starting, .catchingUp: false
                    }
                }
        }
    }

    /// True while the connection's I/O thread runs (connected or reconnecting).
    public var isAlive: Bool {
        guard let connection = state.withLock({ $0.connection }) else { return false }
        switch connection.state {
        case .connected, .reconnecting: return true
        case .closed: return false
        }
    }

    /// Each configured shard's phase.
    public var shards: [Int: ShardPhase] {
        state.withLock { state in
            var shards = state.shards
            for shard in state.lostSubscriptions { shards[shard] = .starting }
            return shards
        }
    }

    func setTopologyDeclared() { state.withLock { $0.topologyDeclared = true } }
    func setConnection(_ connection: AMQPConnection?) { state.withLock { $0.connection = connection } }
    func set(_ phase: ShardPhase, shard: Int) { state.withLock { $0.shards[shard] = phase } }
    func subscriptionEnded(shard: Int) { state.withLock { _ = $0.lostSubscriptions.insert(shard) } }
}
