import SwitchboardAMQP

/// Where a reader can begin a shard's journal instead of at its start, and reach the same state: the first
/// record of what the latest snapshot taken needs (the entries after the seq it is as of, then the snapshot
/// itself), and the epoch that snapshot was taken in.
///
/// Every reader of the journal works it out the same way as it takes in snapshots (`ShardLedger`), and a
/// writer stamps the latest it knows on every message it appends. So the journal's last messages say where a
/// starting instance can begin (`JournalRestartPoint.find`), and it need not read days of history for a state
/// that a snapshot a few seconds old holds.
///
/// Read from `offset`, the journal holds the snapshot after records of its epoch and of writers it superseded
/// (or that superseded it later). A reader that begins there counts only entries of `epoch` until it reads a
/// marker, as a reader from the start would at that point: a superseded writer's snapshot read first must not
/// become its state.
struct JournalRestartPoint: Sendable, Hashable {
    static let offsetHeader = "x-switchboard-restart-offset"
    static let epochHeader = "x-switchboard-restart-epoch"

    let offset: Int64
    let epoch: String

    init(offset: Int64, epoch: String) {
        self.offset = offset
        self.epoch = epoch
    }

    /// The restart point a journal message carries; `nil` when it carries none, says to read from the start,
    /// or is malformed.
    init?(_ headers: AMQPTable) {
        guard let offset = headers[Self.offsetHeader]?.intValue, offset >= 0,
            let epoch = headers[Self.epochHeader]?.stringValue
        else { return nil }
        self.init(offset: offset, epoch: epoch)
    }

    var headers: AMQPTable {
        [Self.offsetHeader: .int(offset), Self.epochHeader: .string(epoch)]
    }

    /// What a writer that knows no restart point stamps (it read the journal from its start, and no snapshot
    /// yet): read from the start. Said outright, so that a starting instance need not wait to see whether a
    /// later message says more.
    static var fromTheStart: AMQPTable { [offsetHeader: .int(-1)] }

    /// Where a reader of `journal` begins: as the first message of the journal's last chunk that says so, or
    /// `nil` for the journal's start (an empty journal, a writer that knew no restart point, or messages of a
    /// writer that stamped none). Gives up waiting for the last chunk after `QuietDrain.firstDeliveryPatience`,
    /// and for a message that says more after `quietPeriod`: the start is always a correct place to begin, only
    /// a slower one.
    static func find(
        _ journal: String, on connection: AMQPConnection, quietPeriod: Duration
    ) async throws -> Self? {
        // The count lags a few seconds behind appends: a journal written just now may read from its start.
        guard try await connection.queueStatus(journal)?.messageCount ?? 0 > 0 else { return nil }
        let consumer = try await connection.consume(
            queue: journal, prefetch: 64, arguments: StreamOffset.last.consumerArguments)
        var found: Self?
        do {
            try await QuietDrain.read(
                consumer, quietPeriod: quietPeriod, firstWithin: QuietDrain.firstDeliveryPatience
            ) { delivery in
                delivery.ackStreamRead()
                guard delivery.properties.headers[offsetHeader]?.intValue != nil else { return .keepReading }
                found = Self(delivery.properties.headers)
                return .stop
            }
        } catch AMQPError.nothingDelivered {
            return nil
        }
        return found
    }
}

extension ShardLedger {
    /// Finds `journal`'s restart point (`JournalRestartPoint.find`) and begins reading there (`begin(at:)`), so
    /// that no reader begins at a point without its epoch. Returns the point, or `nil`: read from the start.
    func beginAtRestartPoint(
        of journal: String, on connection: AMQPConnection, quietPeriod: Duration = .seconds(1)
    ) async throws -> JournalRestartPoint? {
        guard let point = try await JournalRestartPoint.find(journal, on: connection, quietPeriod: quietPeriod) else {
            return nil
        }
        begin(at: point)
        return point
    }
}
