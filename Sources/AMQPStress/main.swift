import Foundation
import Logging
import SwitchboardAMQP

// Many tasks publishing through shared publishers on one connection, half of them one message at a time
// and half in batches, while another connection consumes: run by scripts/tsan.sh under the thread
// sanitizer, so the AMQP layer's hand-offs between Swift tasks and its I/O threads are checked for data
// races. Then batch publishes that must fail: a nack in the middle, a mandatory message no queue takes.
// Exits 1 when a message is lost or duplicated, or a batch reports the wrong outcome.
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
                    let messages = (0..<perTask).map { index in
                        OutgoingMessage(
                            body: Array(String(task * perTask + index).utf8), exchange: "", routingKey: queue,
                            properties: AMQPProperties(deliveryMode: .persistent))
                    }
                    if task.isMultiple(of: 2) {
                        for message in messages {
                            try await publisher.publish(
                                message.body, exchange: message.exchange, routingKey: message.routingKey,
                                properties: message.properties)
                        }
                    } else {
                        for start in stride(from: 0, to: perTask, by: 20) {
                            try await publisher.publish(contentsOf: Array(messages[start..<min(start + 20, perTask)]))
                        }
                    }
                    return perTask
                }
            }
            return try await group.reduce(0, +)
        }
        let numbers = try await received.value
        let batchesReport = try await checkFailingBatches(publishing, queue: queue)
        await publishing.close()
        await consuming.close()
        let complete = confirmed == tasks * perTask && numbers.count == tasks * perTask && Set(numbers) == Set(0..<(tasks * perTask))
        print("amqp-stress: \(confirmed) confirmed, \(numbers.count) received, \(Set(numbers).count) distinct: \(complete ? "all exactly once" : "LOST OR DUPLICATED")")
        return complete && batchesReport
    }

    /// A batch into a queue that takes two messages and refuses more must fail with the nack of its third
    /// message; a batch with an unroutable mandatory message in the middle must fail with its return; one
    /// with a message to an unknown exchange fails with the channel the broker closed over it; a batch of
    /// good messages must succeed. Every batch returns only after all its messages settled.
    private static func checkFailingBatches(_ connection: AMQPConnection, queue: String) async throws -> Bool {
        let bounded = "\(queue).bounded"
        let open = "\(queue).open"
        try await connection.declare(Topology(queues: [
            .init(bounded, exclusive: true, maxLength: 2, overflow: .rejectPublish),
            .init(open, exclusive: true),
        ]))
        let publisher = try await connection.publisher(confirmWindow: 16)
        func message(_ routingKey: String, mandatory: Bool = false) -> OutgoingMessage {
            OutgoingMessage(body: Array("check".utf8), exchange: "", routingKey: routingKey, mandatory: mandatory)
        }
        func outcome(_ messages: [OutgoingMessage]) async -> String {
            do {
                try await publisher.publish(contentsOf: messages)
                return "confirmed"
            } catch AMQPError.publishNacked(_, let routingKey) {
                return "nacked \(routingKey)"
            } catch AMQPError.publishReturned(_, let routingKey, _, _) {
                return "returned \(routingKey)"
            } catch AMQPError.notFound {
                return "channel closed: not found"
            } catch {
                return "\(error)"
            }
        }
        let nowhere = "\(queue).nowhere"
        let checks = [
            ("a nack in the middle", await outcome([message(bounded), message(bounded), message(bounded), message(open)]), "nacked \(bounded)"),
            ("an unroutable mandatory message", await outcome([message(open), message(nowhere, mandatory: true), message(open)]), "returned \(nowhere)"),
            ("a message to an unknown exchange", await outcome([
                message(open), OutgoingMessage(body: [1], exchange: "\(queue).no-such-exchange", routingKey: open), message(open),
            ]), "channel closed: not found"),
            ("all good after the channel was reopened", await outcome((0..<40).map { _ in message(open) }), "confirmed"),
        ]
        var passed = true
        for (name, got, expected) in checks where got != expected {
            print("amqp-stress: batch with \(name): expected \(expected), got \(got)")
            passed = false
        }
        print("amqp-stress: failing batches \(passed ? "reported as expected" : "MISREPORTED")")
        return passed
    }
}

exit(try await Stress.run(url: url) ? 0 : 1)
