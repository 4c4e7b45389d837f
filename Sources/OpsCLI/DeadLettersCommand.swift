import ArgumentParser
import Foundation
import SwitchboardAMQP
import SwitchboardOps
import SwitchboardRuntime

struct DeadLettersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dead-letters", abstract: "Messages rejected to switchboard.dead-letters.",
        subcommands: [List.self, Requeue.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show every dead letter without removing any (each is received, then returned to the queue).")

        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var reading: DrainOptions
        @Option(parsing: .unconditional, help: "Characters of each body to show.") var excerpt: Int = 160

        func validate() throws {
            guard excerpt >= 0 else { throw ValidationError("--excerpt must be 0 or more") }
        }

        func run() async throws {
            let connection = try await connection.connect("dead-letters-list")
            var letters: [DeadLetter] = []
            let (present, _) = try await Failure.reporting {
                try await DeadLetter.readPresent(on: connection, quietPeriod: .milliseconds(reading.quietMs)) { delivery in
                    letters.append(DeadLetter(delivery))
                    return letters.count >= DeadLetter.readLimit ? .stop : .keepReading
                }
            }
            await connection.close()
            if letters.isEmpty {
                print("\(ServiceTopology.deadLetterQueue) is empty")
                return
            }
            for letter in letters {
                print(letter.summary(excerptLength: excerpt))
            }
            let shown = letters.count < present ? "\(letters.count) of \(present) dead letters shown" : "\(letters.count) dead letter(s)"
            print("\(shown), all left in the queue")
        }
    }

    struct Requeue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Republish dead letters to their original exchange and routing key (confirmed), then remove them.")

        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var reading: DrainOptions
        @Flag(help: "Every dead letter.") var all = false
        @Option(help: "Only the dead letter with this message id.") var id: String?

        func validate() throws {
            guard all != (id != nil) else { throw ValidationError("give exactly one of --all or --id <message-id>") }
        }

        func run() async throws {
            let connection = try await connection.connect("dead-letters-requeue")
            var tally = RequeueTally()
            let report: DeadLetterRequeue.Report
            do {
                report = try await Failure.reporting {
                    do {
                        return try await DeadLetterRequeue.run(
                            on: connection, id.map { .id($0) } ?? .all, quietPeriod: .milliseconds(reading.quietMs),
                            each: { tally.show($0) })
                    } catch AMQPError.preconditionFailed(let operation, let detail) where detail.contains("user_id") {
                        Failure.printError(
                            "the broker refused to republish a message with its original user_id; the broker user of "
                                + "this command needs the impersonator tag (deploy/README.md)")
                        throw AMQPError.preconditionFailed(operation: operation, detail: detail)
                    }
                }
            } catch {
                // The letters shown above as requeued were republished (confirmed) and removed before it failed.
                Failure.printError("stopped by the error above after: \(tally.summary)")
                throw error
            }
            await connection.close()
            print(tally.summary)
            if report.stoppedAtReadLimit {
                Failure.printError(
                    "stopped after passing over \(DeadLetter.readLimit) dead letters, which a command holds at most; "
                        + "the letters after them were not read")
            }
            if let id, tally.requeued == 0 {
                if tally.skipped == 0 {
                    Failure.printError("no dead letter with message id \(id)\(report.stoppedAtReadLimit ? " among them" : "")")
                }
                throw ExitCode(1)
            }
        }
    }
}

/// Shows each outcome of a requeue as it happens, and counts them.
private struct RequeueTally {
    var requeued = 0
    var skipped = 0
    var pulses = 0

    mutating func show(_ outcome: DeadLetterRequeue.Outcome) {
        switch outcome {
        case .requeued(let letter, let exchange):
            requeued += 1
            print("requeued \(letter.messageID ?? "-") to \(exchange) with key \(letter.originalRoutingKey)")
        case .noOriginalExchange(let letter):
            skipped += 1
            Failure.printError("\(letter.messageID ?? "a message without id") names no original exchange; left in the queue")
        case .routerEvent(let letter):
            skipped += 1
            Failure.printError(
                "\(letter.messageID ?? "a message without id") is a Router event, not requeued: every consumer of "
                    + "switchboard.events would get it again, and the services that go by the desk's seq would "
                    + "drop it as old; left in the queue")
        case .discardedPulse(let letter):
            pulses += 1
            print("removed a timer pulse of \(letter.originalRoutingKey) (the next pulse stands in for it)")
        }
        fflush(nil)
    }

    var summary: String {
        let notes = [skipped > 0 ? "\(skipped) left in the queue" : nil, pulses > 0 ? "\(pulses) pulse(s) removed" : nil]
        return "\(requeued) requeued" + notes.compactMap { $0.map { ", \($0)" } }.joined()
    }
}

struct DrainOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "Stop once the queue has been quiet this long, in ms.")
    var quietMs: Int = 1_000

    func validate() throws {
        guard quietMs >= 0 else { throw ValidationError("--quiet-ms must be 0 or more") }
    }
}
