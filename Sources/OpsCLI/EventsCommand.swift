import ArgumentParser
import Foundation
import SwitchboardAMQP
import SwitchboardCommon
import SwitchboardOps
import SwitchboardRuntime

struct EventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events", abstract: "The Router's facts.", subcommands: [Tail.self])

    /// Where in `switchboard.events.log` to start.
    enum Start: ExpressibleByArgument {
        case offset(StreamOffset)

        init?(argument: String) {
            switch argument {
            case "first": self = .offset(.first)
            case "last": self = .offset(.last)
            case "next": self = .offset(.next)
            default:
                if let instant = Instant(rfc3339: argument) {
                    self = .offset(.timestamp(UInt64(max(0, instant.millisecondsSinceEpoch / 1000))))
                } else if let seconds = UInt64(argument) {
                    self = .offset(.timestamp(seconds))
                } else {
                    return nil
                }
            }
        }

        var streamOffset: StreamOffset {
            switch self {
            case .offset(let offset): offset
            }
        }
    }

    struct Tail: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Follow switchboard.events.log, one line per event, until Ctrl-C.")

        @OptionGroup var connection: ConnectionOptions
        @Option(help: "Only this desk's events.") var desk: String?
        @Option(
            help: "first, last, next, an RFC 3339 time (2026-11-25T18:00:00Z) or Unix seconds.")
        var from: Start = .offset(.next)

        func run() async throws {
            let deskFilter: DeskID? = try desk.map { try identifier($0) }
            let connection = try await connection.connect("events-tail")
            try await Failure.reporting {
                let consumer = try await connection.consume(
                    queue: ServiceTopology.eventsLog, prefetch: 500,
                    arguments: from.streamOffset.consumerArguments)
                for try await delivery in consumer {
                    try delivery.ack()
                    if let deskFilter, delivery.properties.headers["desk"]?.stringValue != deskFilter.rawValue { continue }
                    do {
                        print(EventLine.describe(try WireCodec.decodeRouterEvent(Data(delivery.body)).message))
                    } catch {
                        print("undecodable event (message id \(delivery.properties.messageID ?? "-")): \(error)")
                    }
                    fflush(nil)
                }
            }
        }
    }
}
