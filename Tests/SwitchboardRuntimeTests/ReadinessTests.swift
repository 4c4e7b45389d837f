import Synchronization
import SwitchboardAMQP
@testable import SwitchboardRuntime
import Testing

@Suite struct ReadinessTests {
    /// A readiness whose topology is declared and whose shards are active or standing by.
    private static func servingInstance() -> Readiness {
        let readiness = Readiness(shards: [0, 1])
        readiness.setTopologyDeclared()
        readiness.set(.active, shard: 0)
        readiness.set(.standby, shard: 1)
        return readiness
    }

    @Test func anInstanceIsReadyOnlyWhileConnected() {
        let readiness = Self.servingInstance()
        #expect(!readiness.isReady, "no connection yet")
        #expect(!readiness.isAlive)
        let connection = ConnectionStateBox()
        readiness.setConnectionState { connection.state }
        #expect(readiness.isReady)
        #expect(readiness.isAlive)

        connection.state = .reconnecting(failedAttempts: 2)
        #expect(!readiness.isReady, "nothing is consumed while reconnecting")
        #expect(readiness.isAlive, "the I/O thread still runs")

        connection.state = .connected
        #expect(readiness.isReady)

        connection.state = .closed
        #expect(!readiness.isReady)
        #expect(!readiness.isAlive)
    }

    @Test func aShardCatchingUpOrWithoutItsSubscriptionKeepsTheInstanceUnready() {
        let readiness = Self.servingInstance()
        readiness.setConnectionState { .connected }
        readiness.set(.catchingUp, shard: 1)
        #expect(!readiness.isReady)
        readiness.set(.active, shard: 1)
        #expect(readiness.isReady)
        readiness.subscriptionEnded(shard: 0)
        #expect(!readiness.isReady)
        #expect(readiness.shards[0] == .starting)
    }

    @Test func aStandbyThatCannotReadItsShardsJournalKeepsTheInstanceUnreadyUntilASnapshotCoversIt() {
        let readiness = Self.servingInstance()
        readiness.setConnectionState { .connected }
        readiness.setUnreadable("a record of a newer version", shard: 1)
        #expect(!readiness.isReady)
        #expect(readiness.unreadableJournals == [1: "a record of a newer version"])
        readiness.setUnreadable(nil, shard: 1)
        #expect(readiness.isReady)
        #expect(readiness.unreadableJournals.isEmpty)
    }
}

/// A connection state that a test changes while readiness reads it.
private final class ConnectionStateBox: Sendable {
    private let current = Mutex(AMQPConnectionState.connected)

    var state: AMQPConnectionState {
        get { current.withLock { $0 } }
        set { current.withLock { $0 = newValue } }
    }
}
