import Foundation
import Logging
import SwitchboardAMQP

// Many tasks publishing through shared publishers on one connection while another connection consumes:
// run by scripts/tsan.sh under the thread sanitizer, so the AMQP layer's hand-offs between Swift tasks and
// its I/O threads are checked for data races. Exits 1 when a message is lost or duplicated.
let url = ProcessInfo.processInfo.environment["SWITCHBOARD_AMQP_URL"]
    ?? "amqp://switchboard:switchboard@127.0.0.1:5673/switchboard"

enum Stress {
    static func run(url: String) async throws -> Bool {
        let tasks = 32
        let perTask = 500
        let logger = Logger(label: "switchboard.amqp-stress")

        let configuration = try AMQPConfiguration(url: url)
        let publishing = try await AMQPConnection.connect(configuration, logger: logger)
        let consuming = try await AMQPConnection.connect(configuration, logger: logger)
        let queue = "switchboard.amqp-stress.\(ProcessInfo.processInfo.processIdentifier)"
        try await publishing.declare(Topology(queues: [.init(queue)]))
        let consumer = try await consuming.consume(queue: queue, prefetch: 256)
        var publishers: [AMQPPublisher] = []
        for _ in 0..<4 { publishers.append(try await publishing.publisher(confirmWindow: 64)) }
        let sharedPublishers = publishers

        let received = Task {
            var numbers: [Int] = []
            for try await delivery in consumer {
                numbers.append(Int(String(decoding: delivery.body, as: UTF8.self)) ?? -1)
                try delivery.ack()
                if numbers.count == tasks * perTask { break }
            }
            return numbers
        }
        let confirmed = try await withThrowingTaskGroup(of: Int.self) { group in
            for task in 0..<tasks {
                let publisher = sharedPublishers[task % sharedPublishers.count]
                group.addTask {
                    for index in 0..<perTask {
                        try await publisher.publish(
                            Array(String(task * perTask + index).utf8), exchange: "", routingKey: queue,
                            properties: AMQPProperties(deliveryMode: .persistent))
                    }
                    return perTask
                }
            }
            return try await group.reduce(0, +)
        }
        let numbers = try await received.value
        await publishing.close()
        await consuming.close()
        let complete = confirmed == tasks * perTask && numbers.count == tasks * perTask && Set(numbers) == Set(0..<(tasks * perTask))
        print("amqp-stress: \(confirmed) confirmed, \(numbers.count) received, \(Set(numbers).count) distinct: \(complete ? "all exactly once" : "LOST OR DUPLICATED")")
        return complete
    }
}

exit(try await Stress.run(url: url) ? 0 : 1)
