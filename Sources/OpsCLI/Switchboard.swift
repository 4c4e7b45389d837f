import ArgumentParser
import Foundation
import SwitchboardAMQP
import SwitchboardCommon
import SwitchboardOps
import SwitchboardRuntime

@main
struct Switchboard: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switchboard",
        abstract: "Operate Switchboard through its public exchanges and queues.",
        discussion: """
            Exit status: 0 done, 64 bad arguments, 69 broker unreachable, 77 login or access refused, \
            1 any other failure.
            """,
        subcommands: [
            DeskCommand.self, AgentCommand.self, EventsCommand.self, JournalCommand.self, DeadLettersCommand.self,
        ])
}

struct ConnectionOptions: ParsableArguments {
    @Option(
        name: .customLong("amqp-url"),
        help: "Broker URL (default: $\(OpsConnection.environmentKey), else the local node of `make up`).")
    var amqpURL: String?

    func connect(_ name: String) async throws -> AMQPConnection {
        let url = OpsConnection.resolveURL(flag: amqpURL)
        return try await Failure.reporting { try await OpsConnection.connect(url: url, name: "switchboard-\(name)") }
    }
}

/// Turns broker failures into one line on stderr and an exit status a script can act on.
enum Failure {
    static func reporting<Result>(_ body: () async throws -> Result) async throws -> Result {
        do {
            return try await body()
        } catch let error as AMQPError {
            printError(error.description)
            throw ExitCode(exitStatus(for: error))
        } catch let error as ContractError {
            printError("invalid message: \(error)")
            throw ExitCode(64)
        }
    }

    static func exitStatus(for error: AMQPError) -> Int32 {
        switch error {
        case .brokerUnreachable, .notConnected, .connectionLost, .connectionClosedByBroker, .blockedTimeout, .nothingDelivered: 69
        case .authenticationFailed, .virtualHostNotAllowed, .accessRefused: 77
        case .invalidURL: 64
        case .preconditionFailed, .notFound, .channelClosed, .publishNacked, .publishReturned, .deliveryChannelGone,
            .connectionClosed, .streamNotResumed, .tls, .tooManyChannels, .protocolError:
            1
        }
    }

    static func printError(_ message: String) {
        FileHandle.standardError.write(Data("switchboard: \(message)\n".utf8))
    }
}

/// Parses an identifier argument with the contract's rule, so a typo fails before anything is published.
func identifier<Kind>(_ raw: String, _ kind: Identifier<Kind>.Type = Identifier<Kind>.self) throws -> Identifier<Kind> {
    do {
        return try Identifier<Kind>(raw)
    } catch {
        throw ValidationError("'\(raw)' is not a valid \(Kind.name): \(error.problem)")
    }
}

/// Publishes inbound messages on `switchboard.in` with confirms and says what went out.
func publishInbound(_ messages: [WireMessage], options: ConnectionOptions, name: String) async throws {
    let connection = try await options.connect(name)
    defer { Task { await connection.close() } }
    try await Failure.reporting {
        let publisher = try await connection.publisher(confirmWindow: 16)
        for message in messages {
            try await publisher.publish(message)
            print("published \(message.routingKey) (id \(message.properties.messageID ?? "-")), confirmed by the broker")
        }
    }
    await connection.close()
}
