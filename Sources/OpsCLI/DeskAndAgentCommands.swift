import ArgumentParser
import SwitchboardCommon
import SwitchboardOps

extension RoutingPolicy: ExpressibleByArgument {}

struct DeskCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "desk", abstract: "Desk policy and state.", subcommands: [Configure.self, Show.self])

    struct Configure: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Publish desk.configure: only the settings given change; a new desk starts from the defaults.")

        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The desk.") var desk: String
        // Numbers are taken as given: `--ring-ms -5` is a value that the contract's check refuses, not a missing one.
        @Option(parsing: .unconditional, help: "How long an offer rings, in ms.")
        var ringMs: Int64?
        @Option(parsing: .unconditional, help: "Cadence of countdown events while ringing, in ms (0: none).")
        var countdownEveryMs: Int64?
        @Option(help: "Automatic service: true or false.") var autoAccept: Bool?
        @Option(parsing: .unconditional, help: "Offers per pass before the conversation goes back to the queue.")
        var maxOfferAttempts: Int?
        @Option(parsing: .unconditional, help: "Consecutive expired rings before an agent is put on break.")
        var missesBeforeBreak: Int?
        @Option(help: "longestIdle, leastBusy or roundRobin.") var routing: RoutingPolicy?
        @Option(
            parsing: .unconditional,
            help: "User silence after an agent's message before the conversation closes, in ms (0: never).")
        var inactivityMs: Int64?
        @Option(help: "The automatic closure message.") var closureText: String?
        @Option(parsing: .unconditional, help: "Warn the user this long before the close, in ms (0: no warning).")
        var warningMs: Int64?
        @Option(help: "The warning's text.") var warningText: String?

        func run() async throws {
            let patch = DeskSettingsPatch(
                ringMs: ringMs, countdownEveryMs: countdownEveryMs, autoAccept: autoAccept,
                maxOfferAttempts: maxOfferAttempts, missesBeforeBreak: missesBeforeBreak, routing: routing,
                inactivityMs: inactivityMs, closureText: closureText, warningMs: warningMs, warningText: warningText)
            let message = try await Failure.reporting {
                try InboundMessageFactory().message(desk: try identifier(desk), .deskConfigure(patch))
            }
            try await publishInbound([message], options: connection, name: "desk-configure")
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Settings, agents, waiting conversations, live rings and sessions, as the Router holds them.",
            discussion: "Read from the Router's shard journals, each from a recent snapshot. Exits 1 for an unknown desk.")

        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var reading: DeskReadingOptions
        @Argument(help: "The desk.") var desk: String

        func run() async throws {
            let state = try await reading.read(try identifier(desk), connection: connection)
            print(DeskTable.full(state, now: WallClock.now()))
        }
    }
}

struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent", abstract: "Agents of a desk.", subcommands: [Upsert.self, Remove.self, List.self])

    /// `true`, `false`, or `default` (the desk's setting).
    enum AutoAcceptChoice: String, ExpressibleByArgument, CaseIterable {
        case `true`, `false`, `default`

        var value: Bool? {
            switch self {
            case .true: true
            case .false: false
            case .default: nil
            }
        }
    }

    struct Upsert: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Publish agent.upsert: create or change an agent.")

        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The desk.") var desk: String
        @Argument(help: "The agent.") var agent: String
        @Option(help: "Comma-separated groups, e.g. sales,support.") var groups: String = ""
        @Option(parsing: .unconditional, help: "Conversations at once (at least 1).")
        var capacity: Int
        @Option(help: "true, false or default (the desk's setting).") var autoAccept: AutoAcceptChoice = .default

        func validate() throws {
            guard capacity >= 1 else { throw ValidationError("--capacity must be at least 1") }
        }

        func run() async throws {
            let groupIDs: [GroupID] = try groups.split(separator: ",").map { try identifier(String($0)) }
            let profile = AgentProfile(
                agent: try identifier(agent), groups: groupIDs, capacity: capacity, autoAccept: autoAccept.value)
            let message = try await Failure.reporting {
                try InboundMessageFactory().message(desk: try identifier(desk), .agentUpsert(profile))
            }
            try await publishInbound([message], options: connection, name: "agent-upsert")
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Publish agent.remove: its rings are withdrawn, its sessions re-queued.")

        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The desk.") var desk: String
        @Argument(help: "The agent.") var agent: String

        func run() async throws {
            let body = InboundBody.agentRemove(agent: try identifier(agent))
            let message = try await Failure.reporting { try InboundMessageFactory().message(desk: try identifier(desk), body) }
            try await publishInbound([message], options: connection, name: "agent-remove")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The desk's agents with status, load and groups, as the Router holds them.",
            discussion: "Read as `desk show` reads them. Exits 1 for an unknown desk.")

        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var reading: DeskReadingOptions
        @Argument(help: "The desk.") var desk: String

        func run() async throws {
            let state = try await reading.read(try identifier(desk), connection: connection)
            print(DeskTable.agents(state))
        }
    }
}
