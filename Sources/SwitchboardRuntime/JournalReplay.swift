import Foundation
import Logging
import SwitchboardAMQP
import SwitchboardCommon

/// Replays one shard's journal, record by record from its first, through the core, by the rules a service
/// reads it with (`ShardLedger`): what it shows is what the shard decided, with the message ids its effects
/// were published under.
public struct JournalReplay<Adapter: ShardCoreAdapter>: Sendable {
    public let shard: Int
    private let ledger: ShardLedger<Adapter>
    private let assembler = JournalRecordAssembler()

    /// Whether it began at the journal's restart point (`beginAtRestartPoint`), not at its start.
    public private(set) var begunAtRestartPoint = false

    /// The stream it reads.
    public var journal: String { ServiceTopology.journal(Adapter.service, shard: shard) }

    public init(shard: Int) {
        self.shard = shard
        ledger = ShardLedger(
            replaying: shard, logger: Logger(label: "switchboard.journal-replay", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    /// Begins the replay at the journal's restart point, where a starting instance of the service begins to
    /// reach the shard's latest state, and returns that offset to read from; `nil` (and begins nothing) when the
    /// journal's last messages say to read it from its start, or say nothing within `quietPeriod`.
    public mutating func beginAtRestartPoint(on connection: AMQPConnection, quietPeriod: Duration) async throws -> StreamOffset? {
        guard let point = try await ledger.beginAtRestartPoint(of: journal, on: connection, quietPeriod: quietPeriod) else {
            return nil
        }
        begunAtRestartPoint = true
        return .offset(point.offset)
    }

    /// Takes in the next journal message (its body and headers) and returns what the shard did with it, in
    /// order: nothing for a part of a record until the record's last part.
    public func receive(_ body: [UInt8], headers: AMQPTable) async throws -> [JournalStep] {
        switch assembler.add(body, headers: headers) {
        case .record(let record):
            await ledger.receive(try JournalEntry.decodeRecord(record.body))
            return await ledger.takeSteps()
        case .held, .dropped:
            return []
        }
    }

    /// The core as of the last record taken in.
    public var core: Adapter.Core {
        get async { await ledger.coreForSnapshot().core }
    }
}

/// One step of a shard's history, as replaying its journal shows it.
public enum JournalStep: Hashable, Sendable {
    /// A writer began its term: the instance that took the shard (at start, or from a standby).
    case writerTerm(epoch: String, at: Instant)
    /// The writer recorded the core's state as of entry `asOf`.
    case snapshot(seq: UInt64, asOf: UInt64, at: Instant)
    /// The journal's start was cut off by retention: the core starts from the snapshot as of `asOf`; `failure`
    /// says why it could not, if it could not (it then goes on from the state it had, as a service would).
    case restored(asOf: UInt64, failure: String?)
    /// An entry of a writer whose successor's marker was read first: not applied, by a service or here.
    case superseded(seq: UInt64?, epoch: String, at: Instant)
    /// The writer changed what the core remembers at most: its limits from entry `seq` on, by name.
    case limits(seq: UInt64, limits: [String: Int], at: Instant)
    case applied(AppliedStep)

    /// The wall-clock time of the entry the step is about; `nil` for a restore.
    public var at: Instant? {
        switch self {
        case .writerTerm(_, let at), .snapshot(_, _, let at), .superseded(_, _, let at), .limits(_, _, let at): at
        case .restored: nil
        case .applied(let applied): applied.at
        }
    }
}

/// An input or a timer firing, and what the core did with it.
public struct AppliedStep: Hashable, Sendable {
    public let seq: UInt64
    /// The time the core was given.
    public let at: Instant
    /// The delivery; `nil` for a timer firing.
    public let input: JournalInput?
    /// Why the delivery was refused (it was dead-lettered, and an agent's command answered), if it was.
    public let rejection: String?
    /// Every effect's action with the message id it was published under, or why it could not be encoded.
    public let actions: [EffectAction]

    public init(seq: UInt64, at: Instant, input: JournalInput?, rejection: String?, actions: [EffectAction]) {
        self.seq = seq
        self.at = at
        self.input = input
        self.rejection = rejection
        self.actions = actions
    }
}

public struct EffectAction: Hashable, Sendable {
    public let id: MessageID
    public let action: Result<ShardAction, ContractError>

    public init(id: MessageID, action: Result<ShardAction, ContractError>) {
        self.id = id
        self.action = action
    }
}

extension ShardCoreAdapter {
    /// The actions for the effects of the journal entry `seq` of `shard`, each with the message id derived
    /// from its position: `<service>.<shard>.<seq>.<effect index>`, the same however often it is published.
    /// Lazy: the shard worker goes through them once as it publishes.
    static func actions(
        for effects: [Effect], shard: Int, seq: UInt64
    ) -> LazyMapSequence<EnumeratedSequence<[Effect]>, EffectAction> {
        effects.enumerated().lazy.map { index, effect in
            // A service name and three numbers: printable ASCII, far below 128 characters.
            let id = try! MessageID("\(service.rawValue).\(shard).\(seq).\(index)")
            return EffectAction(id: id, action: Result { () throws(ContractError) in try action(for: effect, id: id) })
        }
    }
}
