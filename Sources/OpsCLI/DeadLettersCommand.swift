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
        @Option(help: "Characters of each body to show.") var excerpt: Int = 160

        func run() async throws {
            let connection = try await connection.connect("dead-letters-list")
            var letters: [DeadLetter] = []
            try await Failure.reporting {
                let consumer = try await connection.consume(queue: ServiceTopology.deadLetterQueue, prefetch: 1_000)
                var held: [AMQPDelivery] = []
                try await QuietDrain.read(consumer, quietPeriod: .milliseconds(reading.quietMs)) { delivery in
                    held.append(delivery)
                    letters.append(DeadLetter(delivery))
                    return held.count >= 1_000 ? .stop : .keepReading
                }
                // Unsettled deliveries would also return when the channel closes; nack says so explicitly.
                try held.last?.nack(requeue: true, multiple: true)
            }
            await connection.close()
            if letters.isEmpty {
                print("\(ServiceTopology.deadLetterQueue) is empty")
                return
            }
            for letter in letters {
                print(letter.summary(excerptLength: excerpt))
            }
            print("\(letters.count) dead letter(s)\(letters.count >= 1_000 ? " (the first 1000 shown)" : ""), all left in the queue")
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
            var requeued = 0
            var skipped = 0
            try await Failure.reporting {
                let publisher = try await connection.publisher(confirmWindow: 1)
                let consumer = try await connection.consume(queue: ServiceTopology.deadLetterQueue, prefetch: 100)
                var passedOver: [AMQPDelivery] = []
                // A message that is still bad comes back to the queue's tail once republished: meeting one of
                // this run's messages again means every message that was there at the start has been seen.
                var seen: Set<DeadLetter.Identity> = []
                try await QuietDrain.read(consumer, quietPeriod: .milliseconds(reading.quietMs)) { delivery in
                    let letter = DeadLetter(delivery)
                    guard seen.insert(letter.identity).inserted else {
                        passedOver.append(delivery)
                        return .stop
                    }
                    guard all || letter.messageID == id else {
                        passedOver.append(delivery)
                        return .keepReading
                    }
                    guard let exchange = letter.originalExchange else {
                        Failure.printError("\(letter.messageID ?? "a message without id") names no original exchange; left in the queue")
                        skipped += 1
                        passedOver.append(delivery)
                        return .keepReading
                    }
                    try await publisher.publish(
                        delivery.body, exchange: exchange, routingKey: letter.originalRoutingKey,
                        properties: letter.republishedProperties, mandatory: true)
                    try delivery.ack()
                    requeued += 1
                    print("requeued \(letter.messageID ?? "-") to \(exchange) with key \(letter.originalRoutingKey)")
                    return all ? .keepReading : .stop
                }
                for delivery in passedOver { try delivery.nack(requeue: true) }
            }
            await connection.close()
            print("\(requeued) requeued\(skipped > 0 ? ", \(skipped) left in the queue" : "")")
            if let id, requeued == 0 {
                Failure.printError("no dead letter with message id \(id)")
                throw ExitCode(1)
            }
        }
    }
}

struct DrainOptions: ParsableArguments {
    @Option(help: "Stop once the queue has been quiet this long, in ms.")
    var quietMs: Int = 1_000
}
