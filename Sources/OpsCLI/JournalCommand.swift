import ArgumentParser
import Foundation
import Synchronization
import SwitchboardAMQP
import SwitchboardCommon
import SwitchboardOps
import SwitchboardRuntime

extension ServiceName: ExpressibleByArgument {}

extension Instant: ExpressibleByArgument {
    public init?(argument: String) {
        self.init(rfc3339: argument)
    }
}

struct JournalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "journal", abstract: "The shards' journals: every input and timer firing a service acted on.",
        subcommands: [Replay.self])

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replay shard journals through the service's core and print what it decided, as it did.",
            discussion: """
                Each input and timer firing is printed with its journal seq, and under it every effect with the \
                message id it was published under. Reads each journal from its first retained record (with \
                --since, from a snapshot taken before that time) up to the moment the command started, and with \
                --follow on from there. Nothing is published and the services are not disturbed.
                """)

        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The service whose journals to replay.") var service: ServiceName
        @Option(name: .customLong("shard"), help: "A shard to replay (repeat for several; default: every shard).")
        var shards: [Int] = []
        @Option(help: "Only what concerns this desk.") var desk: String?
        @Option(
            help: ArgumentHelp(
                "Only what happened from this RFC 3339 time on (2026-11-25T18:00:00Z); each journal is read from a snapshot before it."))
        var since: Instant?
        @OptionGroup var reading: JournalReadingOptions
        @Flag(help: "Then go on printing what the shards do as they do it, until Ctrl-C.") var follow = false

        func validate() throws {
            if let negative = shards.first(where: { $0 < 0 }) { throw ValidationError("no shard \(negative): shards count from 0") }
        }

        func run() async throws {
            switch service {
            case .router: try await replay(RouterAdapter.self)
            case .notifier: try await replay(NotifierAdapter.self)
            case .closer: try await replay(CloserAdapter.self)
            }
        }

        private func replay<Adapter: ShardCoreAdapter>(_: Adapter.Type) async throws {
            let printer = Printer(desk: try desk.map { try identifier($0) }, since: since, until: WallClock.now(), follow: follow)
            let connection = try await connection.connect("journal-replay")
            try await Failure.reporting {
                let journals: JournalCatchUp<Adapter> = reading.catchUp(on: connection)
                let shards = try await self.shards.isEmpty ? everyJournal(of: service, on: connection) : shardsGiven(on: connection)
                var caughtUp: [(replay: JournalReplay<Adapter>, next: StreamOffset)] = []
                for shard in shards {
                    printer.begin(ServiceTopology.journal(service, shard: shard))
                    caughtUp.append(try await journals.catchUp(shard: shard, since: since, needsState: follow, reader: printer))
                }
                guard follow else { return }
                printer.following()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for (replay, next) in caughtUp {
                        group.addTask {
                            let consumer = try await connection.consume(
                                queue: replay.journal, prefetch: 100, arguments: next.consumerArguments)
                            for try await delivery in consumer {
                                delivery.ackStreamRead()
                                printer.following(await journals.steps(of: delivery, in: replay, reader: printer), of: replay.journal)
                            }
                        }
                    }
                    try await group.waitForAll()
                }
            }
            await connection.close()
        }

        /// The shards given, each checked to have a journal before any is read.
        /// Each shard once, in the order first given.
        private func shardsGiven(on connection: AMQPConnection) async throws -> [Int] {
            var seen = Set<Int>()
            let shards = self.shards.filter { seen.insert($0).inserted }
            for shard in shards {
                let journal = ServiceTopology.journal(service, shard: shard)
                guard try await connection.queueStatus(journal) != nil else {
                    throw ValidationError("there is no \(journal): is \(shard) one of the \(service.rawValue)'s shards?")
                }
            }
            return shards
        }
    }

    /// Prints what the journals show: each journal's history under its name, then, following, each record's
    /// lines under the name of its journal when it is not the one printed last.
    private final class Printer: JournalHistoryReader {
        let desk: DeskID?
        let since: Instant?
        /// History ends at the moment the command started.
        let until: Instant
        let follow: Bool
        /// The journal whose lines were printed last.
        private let current = Mutex<String?>(nil)

        init(desk: DeskID?, since: Instant?, until: Instant, follow: Bool) {
            self.desk = desk
            self.since = since
            self.until = until
            self.follow = follow
        }

        /// Starts printing a journal's history.
        func begin(_ journal: String) {
            current.withLock { current in
                print("\(journal):")
                current = journal
            }
        }

        /// Prints the steps of one record of a journal's history, and returns whether it reached the moment the
        /// command started. Without following, what is past that moment is left out.
        func history(_ steps: [JournalStep], of journal: String) -> Bool {
            let past = steps.firstIndex { step in step.at.map { $0 > until } ?? false }
            emit(lines(of: past.map { follow ? steps[...] : steps[..<$0] } ?? steps[...]), of: journal)
            return past != nil
        }

        /// Says that the history is over and what follows happens now.
        func following() {
            current.withLock { current in
                print("following, until Ctrl-C:")
                fflush(nil)
                current = nil
            }
        }

        func following(_ steps: [JournalStep], of journal: String) {
            emit(lines(of: steps[...]), of: journal)
        }

        func startedFromSnapshot(asOf: UInt64, atRestartPoint: Bool, of journal: String) {
            let whence = atRestartPoint ? " (the journal's restart point)" : ""
            emit(["read from the snapshot as of #\(asOf), taken before --since\(whence)"], of: journal)
        }

        func unreadable(_ error: any Error, of journal: String) {
            emit(["an unreadable record (skipped, as the service does): \(error)"], of: journal)
        }

        private func emit(_ lines: [String], of journal: String) {
            guard !lines.isEmpty else { return }
            current.withLock { current in
                if current != journal {
                    print("\(journal):")
                    current = journal
                }
                lines.forEach { print($0) }
                if follow { fflush(nil) }
            }
        }

        private func lines(of steps: ArraySlice<JournalStep>) -> [String] {
            steps.flatMap { step -> [String] in
                if let since, let at = step.at, at < since { return [] }
                return JournalLine.describe(step, desk: desk)
            }
        }
    }
}

/// The service's journals on the broker, shard 0 up to the first missing one; an error when it never ran there.
func everyJournal(of service: ServiceName, on connection: AMQPConnection) async throws -> [Int] {
    var shards: [Int] = []
    while try await connection.queueStatus(ServiceTopology.journal(service, shard: shards.count)) != nil {
        shards.append(shards.count)
    }
    guard !shards.isEmpty else {
        Failure.printError(
            "there is no \(ServiceTopology.journal(service, shard: 0)): the \(service.rawValue) has not run on this broker")
        throw ExitCode(1)
    }
    return shards
}
