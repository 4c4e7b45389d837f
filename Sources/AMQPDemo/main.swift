import Foundation
import Logging
import SwitchboardAMQP

// A short tour of SwitchboardAMQP against a real broker (`make run` starts the local node):
// topology, confirmed publishes, a consumer with manual acks, and a replay from a stream.
// Every message carries this run's id, so what earlier runs left in the queue or the stream is
// acked or skipped, never counted.

let url = ProcessInfo.processInfo.environment["SWITCHBOARD_AMQP_URL"]
    ?? "amqp://switchboard:switchboard@127.0.0.1:5673/switchboard"
let pipelinedCount = 1000
let stepDeadline = Duration.seconds(30)

let exchange = "demo.orders"
let workQueue = "demo.orders.work"
let logStream = "demo.orders.log"
let topology = Topology(
    exchanges: [Topology.Exchange(exchange, kind: .topic)],
    queues: [
        Topology.Queue(workQueue, kind: .quorum),
        Topology.Queue(logStream, kind: .stream, maxAge: "1h"),
    ],
    bindings: [
        Topology.Binding(from: exchange, to: .queue(workQueue), routingKey: "order.*"),
        Topology.Binding(from: exchange, to: .queue(logStream), routingKey: "#"),
    ])

struct StepTimer {
    let start = ContinuousClock.now
    var previous = ContinuousClock.now

    mutating func step(_ text: String) {
        let now = ContinuousClock.now
        print("\(milliseconds(now - start).padded(9)) ms  (+\(milliseconds(now - previous).padded(8)) ms)  \(text)")
        previous = now
    }
}

func milliseconds(_ duration: Duration) -> String {
    let (seconds, attoseconds) = duration.components
    return String(format: "%.1f", Double(seconds) * 1e3 + Double(attoseconds) / 1e15)
}

extension String {
    func padded(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}

struct DemoTimeout: Error, CustomStringConvertible {
    var description: String
}

/// Runs `body`, giving up after `deadline` so a broken broker cannot hang the demo.
func within<T: Sendable>(_ deadline: Duration, _ what: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: deadline)
            return nil
        }
        defer { group.cancelAll() }
        guard case let value?? = try await group.next() else {
            throw DemoTimeout(description: "\(what) did not finish within \(deadline)")
        }
        return value
    }
}

func message(_ number: Int, run: String) -> (body: [UInt8], properties: AMQPProperties) {
    let body = Array(#"{"order":\#(number),"run":"\#(run)"}"#.utf8)
    let properties = AMQPProperties(
        contentType: "application/json", headers: ["demo-run": .string(run)], deliveryMode: .persistent,
        messageID: "\(run)-\(number)", timestamp: UInt64(Date.now.timeIntervalSince1970))
    return (body, properties)
}

func isFromThisRun(_ delivery: AMQPDelivery, _ run: String) -> Bool {
    delivery.properties.headers["demo-run"]?.stringValue == run
}

var logger = Logger(label: "amqp-demo")
logger.logLevel = .warning
let run = String(UUID().uuidString.prefix(8)).lowercased()
// Stream timestamps have one-second resolution: start the replay a second early, skip older runs.
let replayFrom = UInt64(Date.now.timeIntervalSince1970) - 1
var timer = StepTimer()

do {
    let configuration = try AMQPConfiguration(url: url)
    print("AMQP demo, run \(run), broker \(configuration.redactedDescription)")
    let publishing = try await AMQPConnection.connect(configuration, logger: logger)
    let consuming = try await AMQPConnection.connect(configuration, logger: logger)
    timer.step("connected twice: one connection publishes, one consumes (each owns an I/O thread)")

    try await publishing.declare(topology)
    timer.step("declared topic exchange \(exchange) -> quorum queue \(workQueue) (order.*) and stream \(logStream) (#)")

    let work = try await consuming.consume(queue: workQueue, prefetch: 64)
    let received = Task {
        var ours = 0
        var leftovers = 0
        for try await delivery in work {
            try delivery.ack()
            if isFromThisRun(delivery, run) { ours += 1 } else { leftovers += 1 }
            if ours == pipelinedCount + 1 { break }
        }
        return (ours, leftovers)
    }
    timer.step("subscribed to \(workQueue): prefetch 64, manual acks")

    let publisher = try await publishing.publisher(confirmWindow: 256)
    let first = message(0, run: run)
    try await publisher.publish(first.body, exchange: exchange, routingKey: "order.created", properties: first.properties)
    timer.step("published 1 persistent message and waited for its confirm")

    try await withThrowingTaskGroup(of: Void.self) { group in
        for number in 1...pipelinedCount {
            group.addTask {
                let next = message(number, run: run)
                try await publisher.publish(
                    next.body, exchange: exchange, routingKey: "order.created", properties: next.properties)
            }
        }
        try await group.waitForAll()
    }
    timer.step("published \(pipelinedCount) more, pipelined: at most 256 unconfirmed, all confirmed")

    let (acked, leftovers) = try await within(stepDeadline, "consuming") { try await received.value }
    timer.step("consumed and acked all \(acked) of this run"
        + (leftovers > 0 ? ", and \(leftovers) left over from earlier runs" : ""))

    let replay = try await consuming.consume(
        queue: logStream, prefetch: 256, arguments: StreamOffset.timestamp(replayFrom).consumerArguments)
    let (replayed, firstOffset) = try await within(stepDeadline, "the stream replay") {
        var count = 0
        var firstOffset: Int64?
        for try await delivery in replay {
            try delivery.ack()
            guard isFromThisRun(delivery, run) else { continue }
            if firstOffset == nil { firstOffset = StreamOffset.position(in: delivery.properties.headers) }
            count += 1
            if count == pipelinedCount + 1 { break }
        }
        return (count, firstOffset)
    }
    replay.cancel()
    timer.step("replayed \(replayed) messages of this run from stream \(logStream), from offset \(firstOffset.map(String.init) ?? "?")")

    await publishing.close()
    await consuming.close()
    timer.step("closed both connections")
} catch {
    print("AMQP demo failed: \(error)")
    if case AMQPError.brokerUnreachable? = error as? AMQPError {
        print("Is the broker running? `make up` starts the local node; SWITCHBOARD_AMQP_URL names another.")
    }
    exit(1)
}
