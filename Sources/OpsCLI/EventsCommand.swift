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
        /// The stream is read from the whole second before, at a chunk's start: earlier events are skipped here.
        case time(Instant)

        init?(argument: String) {
            switch argument {
            case "first": self = .offset(.first)
            case "last": self = .offset(.last)
            case "next": self = .offset(.next)
            default:
                if let instant = Instant(rfc3339: argument) {
                    self = .time(instant)
                } else if let seconds = Int64(argument), (0...Int64.max / 1000).contains(seconds) {
                    self = .time(Instant(millisecondsSinceEpoch: seconds * 1000))
                } else {
                    return nil
                }
            }
        }

        var streamOffset: StreamOffset {
            switch self {
            case .offset(let offset): offset
            case .time(let instant): .timestamp(UInt64(max(0, instant.millisecondsSinceEpoch / 1000)))
            }
        }

        /// Whether an event at `at` is shown.
        func shows(_ at: Instant) -> Bool {
            switch self {
            case .offset: true
            case .time(let instant): at >= instant
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
                    delivery.ackStreamRead()
                    if let deskFilter, delivery.properties.headers["desk"]?.stringValue != deskFilter.rawValue { continue }
                    do {
                        let event = try WireCodec.decodeRouterEvent(Data(delivery.body)).message
                        guard from.shows(event.at) else { continue }
                        print(EventLine.describe(event))
                    } catch {
                        print("undecodable event (message id \(delivery.properties.messageID ?? "-")): \(error)")
                    }
                    fflush(nil)
                }
            }
        }
    }
}
