import ArgumentParser
import Synchronization
import SwitchboardAMQP
import SwitchboardCommon
import SwitchboardOps
import SwitchboardRuntime

/// How a command reads shard journals (`journal replay`, `desk show`, `agent list`).
struct JournalReadingOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "Stop reading a journal once it has been quiet this long, in ms.")
    var quietMs: Int = 1_000
    /// A journal of at most this many records is read from its start rather than from a snapshot found in it:
    /// that is quicker. (Hidden: for tests; negative, to read any journal from a snapshot.)
    @Option(help: .hidden) var readWholeUpTo = 1_000

    func validate() throws {
        guard quietMs >= 0 else { throw ValidationError("--quiet-ms must be 0 or more") }
    }

    func catchUp<Adapter: ShardCoreAdapter>(on connection: AMQPConnection) -> JournalCatchUp<Adapter> {
        JournalCatchUp(connection: connection, quietPeriod: .milliseconds(quietMs), readWholeUpTo: readWholeUpTo)
    }
}

/// Reads a desk's state where the Router keeps it: its shard journals, each replayed from a recent snapshot
/// up to the moment the command started.
struct DeskReadingOptions: ParsableArguments {
    @OptionGroup var journals: JournalReadingOptions

    /// The desk as the Router held it when the command started; exits 1 when no Router shard holds it.
    func read(_ desk: DeskID, connection options: ConnectionOptions) async throws -> RouterDeskState {
        let reader = StateReader(until: WallClock.now())
        let connection = try await options.connect("desk-show")
        let found = try await Failure.reporting {
            let journals: JournalCatchUp<RouterAdapter> = self.journals.catchUp(on: connection)
            let shards = try await everyJournal(of: .router, on: connection)
            return try await withThrowingTaskGroup(of: (shard: Int, state: RouterDeskState)?.self) { group in
                for shard in shards {
                    group.addTask {
                        let (replay, _) = try await journals.catchUp(
                            shard: shard, since: reader.until, needsState: true, reader: reader)
                        return await replay.core.state(of: desk).map { (shard, $0) }
                    }
                }
                return try await group.compactMap { $0 }.reduce(into: []) { $0.append($1) }
            }
        }
        await connection.close()
        for (journal, count) in reader.unreadable {
            Failure.printError("\(journal) holds \(count) record(s) that could not be read, skipped as the Router does")
        }
        // A desk's inputs go to one shard; one on several means the shard count changed under it.
        let latest = found.max { $0.state.lastSeq < $1.state.lastSeq }
        if found.count > 1, let latest {
            Failure.printError(
                "desk \(desk) is on Router shards \(found.map(\.shard).sorted()): showing shard \(latest.shard), "
                    + "whose last event is the latest")
        }
        guard let latest else {
            Failure.printError("no desk \(desk): the Router has none by that name (it exists once it received desk.configure)")
            throw ExitCode(1)
        }
        return latest.state
    }

    /// Reads each journal's history up to `until`, shows none of it, and counts the records it could not read.
    private final class StateReader: JournalHistoryReader {
        let until: Instant
        private let skipped = Mutex<[String: Int]>([:])

        init(until: Instant) {
            self.until = until
        }

        /// Unreadable records, by journal.
        var unreadable: [(journal: String, count: Int)] {
            skipped.withLock { $0.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } }
        }

        func history(_ steps: [JournalStep], of journal: String) -> Bool {
            steps.contains { step in step.at.map { $0 > until } ?? false }
        }

        func startedFromSnapshot(asOf: UInt64, atRestartPoint: Bool, of journal: String) {}

        func unreadable(_ error: any Error, of journal: String) {
            skipped.withLock { $0[journal, default: 0] += 1 }
        }
    }
}
