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
        /// Shards with a journal record this instance could not read and no snapshot after it, with what it was:
        /// handed such a shard, the instance would stop instead of writing it, so it is no standby.
        var unreadableJournals: [Int: String] = [:]
        /// Reads the connection's state; set once the connection exists.
        var connectionState: (@Sendable () -> AMQPConnectionState)?
    }

    private let state: Mutex<State>

    init(shards: [Int]) {
        var initial = State()
        for shard in shards { initial.shards[shard] = .starting }
        state = Mutex(initial)
    }

    /// The connection's state; `nil` before the first connection.
    public var connectionState: AMQPConnectionState? {
        state.withLock { $0.connectionState }?()
    }

    /// True when connected, the topology is declared, and every configured shard is active and caught up, or a
    /// tailing standby that could take it over. While the connection is being re-established nothing is consumed,
    /// so not ready.
    public var isReady: Bool {
        guard connectionState == .connected else { return false }
        return state.withLock { state in
            state.topologyDeclared && state.lostSubscriptions.isEmpty && state.unreadableJournals.isEmpty
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
        switch connectionState {
        case .connected?, .reconnecting?: true
        case .closed?, nil: false
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

    /// Each shard whose journal holds a record this instance could not read (and no snapshot after it), with
    /// what the record was.
    public var unreadableJournals: [Int: String] {
        state.withLock { $0.unreadableJournals }
    }

    func setTopologyDeclared() { state.withLock { $0.topologyDeclared = true } }
    func setUnreadable(_ record: String?, shard: Int) { state.withLock { $0.unreadableJournals[shard] = record } }
    func setConnection(_ connection: AMQPConnection) { setConnectionState { connection.state } }
    func setConnectionState(_ read: @escaping @Sendable () -> AMQPConnectionState) {
        state.withLock { $0.connectionState = read }
    }
    func set(_ phase: ShardPhase, shard: Int) { state.withLock { $0.shards[shard] = phase } }
    func subscriptionEnded(shard: Int) { state.withLock { _ = $0.lostSubscriptions.insert(shard) } }
}
