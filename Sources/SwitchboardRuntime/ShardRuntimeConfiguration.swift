import Metrics
import SwitchboardAMQP
import SwitchboardCommon

/// What one service instance runs and its limits. Every limit is also reported as a metric
/// (`switchboard_limit{limit=...}`).
public struct ShardRuntimeConfiguration: Sendable {
    public var amqp: AMQPConfiguration
    /// The shards this instance consumes (0..<shardCount). Two instances with the same shards: hot standby.
    public var shards: [Int]
    /// N: how many shards the service has in all (every instance declares them all).
    public var shardCount: Int
    /// Unacknowledged deliveries per shard; also the largest batch.
    public var prefetch: UInt16
    /// Unconfirmed publishes per shard.
    public var confirmWindow: Int
    /// A snapshot after at least this many journal entries since the last one, once the journal has also
    /// grown by the last snapshot's size...
    public var snapshotEveryEntries: Int
    /// ...or after this long since the last one, whichever comes first.
    public var snapshotEvery: Duration
    /// How often each shard queue gets a pulse (which also activates a standby after a failover).
    public var pulseInterval: Duration
    /// How long a takeover may take to read its journal up to its marker before it gives up and retries.
    public var catchUpTimeout: Duration
    public var retention: ServiceTopology.Retention
    /// Names this instance in logs and in the connection name.
    public var instanceName: String
    /// Decides at intake, before journaling, whether a delivery is refused and why
    /// (`JournalInput.refusal`); the adapter's `decode` reads the journaled verdict. Admits everything
    /// unless set: the Router sets it to check who may send agent commands.
    public var admission: @Sendable (JournalInput) -> String?
    /// Where the shards' metrics go; the process's `MetricsSystem` unless set.
    public var metricsFactory: (any MetricsFactory)?
    /// The core's memory limits by name (`CoreLimits`); a limit not named here is the core's default. A writer
    /// that takes over a shard whose core holds other limits journals the change, so a shard keeps the limits of
    /// the last instance that took it.
    public var limits: [String: Int] = [:]

    /// Encodes each snapshot on the writer's path instead of a thread of its own, so that it is ready at the
    /// first chance to append it (for tests: the case in which a snapshot must still never cover unconfirmed
    /// effects, and which encoding off the path reaches only by chance).
    var encodesSnapshotsInline = false

    /// The largest journal message: a record larger than this (a large core's snapshot) is appended in parts
    /// (`JournalRecordParts`). Far below the broker's `max_message_size` (16 MiB by default since RabbitMQ 4.0);
    /// a batch of 256 inputs of the largest allowed body fits in a few records.
    var journalMessageBytes = 4 << 20

    /// The memory limits a writer of `Adapter`'s shards holds its core to.
    func coreLimits<Adapter: ShardCoreAdapter>(of _: Adapter.Type) -> Adapter.Limits {
        Adapter.defaultLimits.changing(limits)
    }

    /// The factory the shards' metrics are made with.
    var metrics: any MetricsFactory { metricsFactory ?? MetricsSystem.factory }

    public init(
        amqp: AMQPConfiguration, shards: [Int], shardCount: Int = 4, prefetch: UInt16 = 256, confirmWindow: Int = 256,
        snapshotEveryEntries: Int = 1_000, snapshotEvery: Duration = .seconds(30), pulseInterval: Duration = .seconds(1),
        catchUpTimeout: Duration = .seconds(30), retention: ServiceTopology.Retention = ServiceTopology.Retention(),
        instanceName: String, admission: @escaping @Sendable (JournalInput) -> String? = { _ in nil },
        metricsFactory: (any MetricsFactory)? = nil
    ) {
        self.amqp = amqp
        self.shards = shards
        self.shardCount = shardCount
        self.prefetch = prefetch
        self.confirmWindow = confirmWindow
        self.snapshotEveryEntries = snapshotEveryEntries
        self.snapshotEvery = snapshotEvery
        self.pulseInterval = pulseInterval
        self.catchUpTimeout = catchUpTimeout
        self.retention = retention
        self.instanceName = instanceName
        self.admission = admission
        self.metricsFactory = metricsFactory
    }

    /// Whether a shard writes a snapshot now, given what it journaled since its last one: after
    /// `snapshotEvery` with anything new, or after `snapshotEveryEntries` entries once the journal has also
    /// grown by as many bytes as the last snapshot weighed. So a large core (the Router remembers many
    /// message ids) never costs more in snapshots than in journal, whatever the load, and recovery reads
    /// at most about two snapshots' worth of journal.
    func snapshotDue(entries: Int, journalBytes: Int, lastSnapshotBytes: Int, sinceLastSnapshot: Duration) -> Bool {
        guard entries > 0 else { return false }
        return (entries >= snapshotEveryEntries && journalBytes >= lastSnapshotBytes) || sinceLastSnapshot >= snapshotEvery
    }

    /// Whether a snapshot that is ready is appended now. Appending it holds the shard's journal for as long as
    /// the broker takes to write it, tens of milliseconds for the Router's megabytes, and a timer that fires
    /// meanwhile is late by as much: so while the shard's next deadline is closer than twice what the last
    /// snapshot took (50 ms at least), the snapshot waits for the timer to fire, for `snapshotHoldLimit` at
    /// most. A deadline is known in advance; a delivery is not, and waits either way.
    func snapshotAppendsNow(nextDeadline: Instant?, now: Instant, lastAppend: Duration, heldFor: Duration) -> Bool {
        guard let nextDeadline, heldFor < Self.snapshotHoldLimit else { return true }
        let room = max(.milliseconds(50), lastAppend * 2)
        return .milliseconds(nextDeadline - now) > room
    }

    /// The longest a ready snapshot waits for room before the shard's next deadline: a shard whose deadlines
    /// never leave room (many rings, each expiring soon) still gets its snapshots.
    static var snapshotHoldLimit: Duration { .seconds(5) }
}
