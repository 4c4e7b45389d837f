import SwitchboardAMQP
import SwitchboardCommon
import SwitchboardRuntime

/// Whoever reads a journal's history through `JournalCatchUp`: what it shows, and where it ends.
public protocol JournalHistoryReader: Sendable {
    /// The steps of one record of the history, in order; returns whether they reached the end of the history
    /// wanted (the read stops there).
    func history(_ steps: [JournalStep], of journal: String) -> Bool
    /// The replay started from the snapshot as of `asOf`, taken before the time asked for; `atRestartPoint`:
    /// read from the journal's restart point, where a starting instance of the service begins.
    func startedFromSnapshot(asOf: UInt64, atRestartPoint: Bool, of journal: String)
    /// A record that could not be read: skipped, as the service does.
    func unreadable(_ error: any Error, of journal: String)
}

/// Reads shard journals through the service's core (`JournalReplay`) up to the end of the history a reader
/// wants, and, with a time to begin at (`since`), without reading a long journal from its first record.
///
/// With `since`, the read begins at the journal's restart point, where its latest snapshot begins (as a starting
/// instance of the service does): the first snapshot read must be older than `since`, or something from then on
/// would be hidden inside it (`SinceStart`). That holds for a shard's state now (`desk show`), and for a shard
/// quiet since then. If it does not, the read begins `lookback` seconds before `since` (services write a snapshot
/// at least every 30 s while busy, by default), and if that is too late, further back, in records (a time when
/// the shard was idle, or its service down, holds none), 100 before the last start, then 800, 6,400 and so on,
/// and at last at the journal's start. A journal of at most `readWholeUpTo` records is read whole: that is
/// quicker than looking (the broker's count of a stream's records lags a few seconds behind; a negative
/// `readWholeUpTo` reads every journal from a snapshot).
public struct JournalCatchUp<Adapter: ShardCoreAdapter>: Sendable {
    public let connection: AMQPConnection
    /// A read ends once its journal has been quiet this long.
    public let quietPeriod: Duration
    public let readWholeUpTo: Int

    /// With `since`, a journal is first read from this long before it, in seconds.
    static var lookback: Int64 { 15 }

    public init(connection: AMQPConnection, quietPeriod: Duration, readWholeUpTo: Int = 1_000) {
        self.connection = connection
        self.quietPeriod = quietPeriod
        self.readWholeUpTo = readWholeUpTo
    }

    /// Reads journal `shard`, from its start or (with `since`) from a snapshot before `since`, until the
    /// reader has the history it wants or the journal is quiet; returns the replay and where to go on
    /// reading. `needsState`: the replay must hold the shard's state even when nothing happened from `since`
    /// on (to follow it, or to show it): the journal's last chunk most often holds the snapshot written after
    /// its last activity.
    public func catchUp(
        shard: Int, since: Instant?, needsState: Bool, reader: some JournalHistoryReader
    ) async throws -> (replay: JournalReplay<Adapter>, next: StreamOffset) {
        var start = StreamOffset.first
        // A stream's message count is the number of records it holds.
        let recordCount =
            try await connection.queueStatus(ServiceTopology.journal(Adapter.service, shard: shard))?.messageCount ?? 0
        if let since, recordCount > readWholeUpTo {
            // The journal's restart point is where its latest snapshot begins: good whenever that snapshot is
            // older than `since` (a shard's state now, or a shard quiet since then).
            var fromRestartPoint = JournalReplay<Adapter>(shard: shard)
            if let point = try await fromRestartPoint.beginAtRestartPoint(on: connection, quietPeriod: quietPeriod),
                case .caughtUp(let replay, let next) = try await read(
                    fromRestartPoint, from: point, of: recordCount, window: SinceStart(since: since), reader: reader)
            {
                return (replay, next)
            }
            start = .timestamp(UInt64(max(0, since.millisecondsSinceEpoch / 1_000 - Self.lookback)))
            var stepBack: Int64 = 100
            while start != .first {
                switch try await read(
                    JournalReplay(shard: shard), from: start, of: recordCount, window: SinceStart(since: since),
                    reader: reader)
                {
                case .caughtUp(let replay, let next):
                    return (replay, next)
                case .empty(let replay, let next):
                    guard needsState else { return (replay, next) }
                    start = start == .last ? .first : .last
                case .tooLate(let firstRead):
                    start = firstRead > stepBack ? .offset(firstRead - stepBack) : .first
                    stepBack *= 8
                }
            }
        }
        guard
            case .caughtUp(let replay, let next) = try await read(
                JournalReplay(shard: shard), from: start, of: recordCount, window: nil, reader: reader)
        else { preconditionFailure("a read from the journal's start is always caught up") }
        return (replay, next)
    }

    /// The steps of one journal record; an unreadable one is reported and skipped, as a service does.
    public func steps(
        of delivery: AMQPDelivery, in replay: JournalReplay<Adapter>, reader: some JournalHistoryReader
    ) async -> [JournalStep] {
        do {
            return try await replay.receive(delivery.body, headers: delivery.properties.headers)
        } catch {
            reader.unreadable(error, of: replay.journal)
            return []
        }
    }

    /// How one read of `catchUp` ended.
    private enum Read {
        /// Read up to the end of the history wanted; go on at `next`.
        case caughtUp(JournalReplay<Adapter>, next: StreamOffset)
        /// The journal holds nothing from where the read began.
        case empty(JournalReplay<Adapter>, next: StreamOffset)
        /// The read, whose first record was at offset `firstRead`, began too late for `since`.
        case tooLate(firstRead: Int64)
    }

    /// One read into `replay` from `start` of a journal the broker counts `recordCount` records in; with `window`,
    /// it is caught up only when the window says so.
    private func read(
        _ replay: JournalReplay<Adapter>, from start: StreamOffset, of recordCount: Int, window: SinceStart?,
        reader: some JournalHistoryReader
    ) async throws -> Read {
        var window = window
        var next = start
        var firstRead: Int64?
        // A read from a record the journal holds waits for it however busy the broker is, rather than end as if
        // the journal were empty (a desk that exists shown as missing). From a time, there may be none.
        let holdsRecords: Bool
        switch start {
        case .first, .last, .offset: holdsRecords = recordCount > 0
        case .next, .timestamp: holdsRecords = false
        }
        let consumer = try await connection.consume(
            queue: replay.journal, prefetch: 100, arguments: start.consumerArguments)
        try await QuietDrain.read(
            consumer, quietPeriod: quietPeriod, firstWithin: holdsRecords ? QuietDrain.firstDeliveryPatience : nil
        ) { delivery in
            delivery.ackStreamRead()
            if let offset = StreamOffset.position(in: delivery.properties.headers) {
                firstRead = firstRead ?? offset
                next = .offset(offset + 1)
            }
            var steps = await steps(of: delivery, in: replay, reader: reader)
            if window != nil {
                let undecided = window!.verdict == .undecided
                steps = window!.take(steps)
                switch window!.verdict {
                case .tooLate:
                    return .stop
                case .good where undecided:
                    if let asOf = window!.restoredAsOf {
                        reader.startedFromSnapshot(asOf: asOf, atRestartPoint: replay.begunAtRestartPoint, of: replay.journal)
                    }
                case .good, .undecided:
                    break
                }
            }
            return reader.history(steps, of: replay.journal) ? .stop : .keepReading
        }
        guard let window, window.verdict != .good else { return .caughtUp(replay, next: next) }
        guard let firstRead else { return .empty(replay, next: next) }
        return .tooLate(firstRead: firstRead)
    }
}
