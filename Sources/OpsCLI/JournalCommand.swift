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
        @Option(help: "Stop reading a journal once it has been quiet this long, in ms.") var quietMs: Int = 1_000
        @Flag(help: "Then go on printing what the shards do as they do it, until Ctrl-C.") var follow = false
        /// With `--since`, a journal of at most this many records is read from its start: that is quicker than
        /// looking for a snapshot in it. (Hidden: for tests, to look for one in any journal.)
        @Option(help: .hidden) var readWholeUpTo = 1_000

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
                let shards = try await self.shards.isEmpty ? everyShard(on: connection) : shardsGiven(on: connection)
                var caughtUp: [(replay: JournalReplay<Adapter>, next: StreamOffset)] = []
                for shard in shards {
                    printer.begin(ServiceTopology.journal(service, shard: shard))
                    caughtUp.append(try await catchUp(Adapter.self, shard: shard, on: connection, printer: printer))
                }
                guard follow else { return }
                printer.following()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for (replay, next) in caughtUp {
                        group.addTask {
                            let consumer = try await connection.consume(
                                queue: replay.journal, prefetch: 100, arguments: ["x-stream-offset": next.argument])
                            for try await delivery in consumer {
                                try delivery.ack()
                                printer.following(await steps(of: delivery, in: replay, printer: printer), of: replay.journal)
                            }
                        }
                    }
                    try await group.waitForAll()
                }
            }
            await connection.close()
        }

        /// With `--since`, a journal is first read from this long before it, in seconds.
        private static let lookback: Int64 = 15

        /// Reads journal `shard` up to the moment the command started, printing what it shows, and returns its
        /// replay and where to go on reading it.
        ///
        /// With `--since`, the read begins `lookback` before it: the first snapshot read must be older than
        /// `--since` (services write one at least every 30 s while busy, by default). If it is not, the read
        /// begins again further back, in records (a time when the shard was idle, or its service down, holds
        /// none), 100 before the last start, then 800, 6,400 and so on, and at last at the journal's start.
        private func catchUp<Adapter: ShardCoreAdapter>(
            _: Adapter.Type, shard: Int, on connection: AMQPConnection, printer: Printer
        ) async throws -> (JournalReplay<Adapter>, StreamOffset) {
            var start = StreamOffset.first
            // A stream's message count is the number of records it holds.
            if let since,
                try await connection.queueStatus(ServiceTopology.journal(service, shard: shard))?.messageCount ?? 0
                    > readWholeUpTo
            {
                start = .timestamp(UInt64(max(0, since.millisecondsSinceEpoch / 1_000 - Self.lookback)))
                var stepBack: Int64 = 100
                while start != .first {
                    switch try await read(
                        Adapter.self, shard: shard, from: start, window: SinceStart(since: since), on: connection,
                        printer: printer)
                    {
                    case .caughtUp(let replay, let next):
                        return (replay, next)
                    case .empty(let replay, let next):
                        // Nothing happened since: nothing to show. A replay that goes on needs the state: the
                        // journal's last chunk most often holds the snapshot written after its last activity.
                        guard follow else { return (replay, next) }
                        start = start == .last ? .first : .last
                    case .tooLate(let firstRead):
                        start = firstRead > stepBack ? .offset(firstRead - stepBack) : .first
                        stepBack *= 8
                    }
                }
            }
            guard case .caughtUp(let replay, let next) = try await read(
                Adapter.self, shard: shard, from: start, window: nil, on: connection, printer: printer)
            else { preconditionFailure("a read from the journal's start is always caught up") }
            return (replay, next)
        }

        /// How one read of `catchUp` ended.
        private enum Read<Adapter: ShardCoreAdapter> {
            /// Read up to the moment the command started; go on at `next`.
            case caughtUp(JournalReplay<Adapter>, next: StreamOffset)
            /// The journal holds nothing from where the read began.
            case empty(JournalReplay<Adapter>, next: StreamOffset)
            /// The read, whose first record was at offset `firstRead`, began too late for `--since`.
            case tooLate(firstRead: Int64)
        }

        /// One read of `catchUp` from `start`; with `window`, it is caught up only when the window says so.
        private func read<Adapter: ShardCoreAdapter>(
            _: Adapter.Type, shard: Int, from start: StreamOffset, window: SinceStart?, on connection: AMQPConnection,
            printer: Printer
        ) async throws -> Read<Adapter> {
            let replay = JournalReplay<Adapter>(shard: shard)
            var window = window
            var next = start
            var firstRead: Int64?
            let consumer = try await connection.consume(
                queue: replay.journal, prefetch: 100, arguments: ["x-stream-offset": start.argument])
            try await QuietDrain.read(consumer, quietPeriod: .milliseconds(quietMs)) { delivery in
                try delivery.ack()
                if let offset = delivery.properties.headers["x-stream-offset"]?.intValue {
                    firstRead = firstRead ?? offset
                    next = .offset(offset + 1)
                }
                var steps = await steps(of: delivery, in: replay, printer: printer)
                if window != nil {
                    let undecided = window!.verdict == .undecided
                    steps = window!.take(steps)
                    switch window!.verdict {
                    case .tooLate: return .stop
                    case .good where undecided: printer.startedFromSnapshot(asOf: window!.restoredAsOf, of: replay.journal)
                    case .good, .undecided: break
                    }
                }
                return printer.catchingUp(steps, of: replay.journal) ? .stop : .keepReading
            }
            guard let window, window.verdict != .good else { return .caughtUp(replay, next: next) }
            guard let firstRead else { return .empty(replay, next: next) }
            return .tooLate(firstRead: firstRead)
        }

        /// The steps of one journal record; an unreadable one is reported and skipped, as a service does.
        private func steps<Adapter: ShardCoreAdapter>(
            of delivery: AMQPDelivery, in replay: JournalReplay<Adapter>, printer: Printer
        ) async -> [JournalStep] {
            do {
                return try await replay.receive(delivery.body)
            } catch {
                printer.emit(["an unreadable record (skipped, as the service does): \(error)"], of: replay.journal)
                return []
            }
        }

        /// The shards given, each checked to have a journal before any is read.
        private func shardsGiven(on connection: AMQPConnection) async throws -> [Int] {
            for shard in shards {
                let journal = ServiceTopology.journal(service, shard: shard)
                guard try await connection.queueStatus(journal) != nil else {
                    throw ValidationError("there is no \(journal): is \(shard) one of the \(service.rawValue)'s shards?")
                }
            }
            return shards
        }

        /// The service's journals on the broker: shard 0 up to the first missing one.
        private func everyShard(on connection: AMQPConnection) async throws -> [Int] {
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
    }

    /// Prints what the journals show: each journal's history under its name, then, following, each record's
    /// lines under the name of its journal when it is not the one printed last.
    private final class Printer: Sendable {
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
        func catchingUp(_ steps: [JournalStep], of journal: String) -> Bool {
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

        func startedFromSnapshot(asOf: UInt64?, of journal: String) {
            guard let asOf else { return }
            emit(["read from the snapshot as of #\(asOf), taken before --since"], of: journal)
        }

        func emit(_ lines: [String], of journal: String) {
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
