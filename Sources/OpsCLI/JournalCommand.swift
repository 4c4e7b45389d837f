import ArgumentParser
import Foundation
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
                message id it was published under. Reads each journal from its first retained record up to the \
                moment the command started. Nothing is published and the services are not disturbed.
                """)

        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The service whose journals to replay.") var service: ServiceName
        @Option(name: .customLong("shard"), help: "A shard to replay (repeat for several; default: every shard).")
        var shards: [Int] = []
        @Option(help: "Only what concerns this desk.") var desk: String?
        @Option(
            help: ArgumentHelp(
                "Only what happened from this RFC 3339 time on (2026-11-25T18:00:00Z); the journal is still run from its start."))
        var since: Instant?
        @Option(help: "Stop reading a journal once it has been quiet this long, in ms.") var quietMs: Int = 1_000

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
            let deskFilter: DeskID? = try desk.map { try identifier($0) }
            let until = WallClock.now()
            let connection = try await connection.connect("journal-replay")
            try await Failure.reporting {
                let shards = try await self.shards.isEmpty ? everyShard(on: connection) : shardsGiven(on: connection)
                for shard in shards {
                    let journal = ServiceTopology.journal(service, shard: shard)
                    print("\(journal):")
                    let replay = JournalReplay<Adapter>(shard: shard)
                    let consumer = try await connection.consume(
                        queue: journal, prefetch: 100, arguments: ["x-stream-offset": StreamOffset.first.argument])
                    try await QuietDrain.read(consumer, quietPeriod: .milliseconds(quietMs)) { delivery in
                        try delivery.ack()
                        let steps: [JournalStep]
                        do {
                            steps = try await replay.receive(delivery.body)
                        } catch {
                            print("an unreadable record (skipped, as the service does): \(error)")
                            return .keepReading
                        }
                        for step in steps {
                            if let at = step.at, at > until { return .stop }
                            if let since, let at = step.at, at < since { continue }
                            JournalLine.describe(step, desk: deskFilter).forEach { print($0) }
                        }
                        return .keepReading
                    }
                }
            }
            await connection.close()
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
}
