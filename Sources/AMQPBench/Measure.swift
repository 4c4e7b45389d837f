import BenchOptions
import Glibc
import Histogram
import Logging
import SwitchboardAMQP

/// One measured run, as both bench/c-baseline.c and `measure` print it. bench/run.sh adds `round`.
struct RunRecord: Codable {
    var client: String
    var queueType: String
    var messages: Int
    var seconds: Double
    var messagesPerSecond: Double
    var latencyP50Microseconds: Double
    var latencyP99Microseconds: Double
    var cpuMicrosecondsPerMessage: Double
    var round: Int?
}

/// The work of bench/c-baseline.c: a fresh queue, one consumer connection (prefetch, one ack per
/// message) and one publisher connection (confirms, at most `window` unconfirmed), persistent
/// bodies that start with the CLOCK_MONOTONIC nanoseconds of their publish.
func measure(_ options: MeasureOptions) async throws -> RunRecord {
    let configuration = try AMQPConfiguration(url: options.url)
    var logger = Logger(label: "amqp-bench")
    logger.logLevel = .warning
    let consumerConnection = try await AMQPConnection.connect(configuration, logger: logger)
    let publisherConnection = try await AMQPConnection.connect(configuration, logger: logger)
    try await publisherConnection.declare(Topology(queues: [Topology.Queue(options.queue, kind: options.queueType)]))
    let deliveries = try await consumerConnection.consume(queue: options.queue, prefetch: options.prefetch)
    let publisher = try await publisherConnection.publisher(confirmWindow: options.window)

    let cpuAtStart = processCPUNanoseconds()
    let start = monotonicNanoseconds()
    async let consumed = receive(options.messages, from: deliveries)
    try await publishAll(options, through: publisher)
    let (latencies, lastDelivery) = try await consumed
    let cpuUsed = processCPUNanoseconds() - cpuAtStart

    await publisherConnection.close()
    await consumerConnection.close()
    let seconds = Double(lastDelivery - start) / 1e9
    return RunRecord(
        client: "swift",
        queueType: options.queueType.rawValue,
        messages: options.messages,
        seconds: seconds,
        messagesPerSecond: Double(options.messages) / seconds,
        latencyP50Microseconds: Double(latencies.valueAtPercentile(50)) / 1e3,
        latencyP99Microseconds: Double(latencies.valueAtPercentile(99)) / 1e3,
        cpuMicrosecondsPerMessage: Double(cpuUsed) / 1e3 / Double(options.messages))
}

/// `window` lanes that each publish and await the confirm, so exactly as many publishes are
/// unconfirmed at once as the C client allows, and none waits for the window inside `publish`
/// (that wait would count as broker latency).
private func publishAll(_ options: MeasureOptions, through publisher: AMQPPublisher) async throws {
    let properties = AMQPProperties(deliveryMode: .persistent)
    try await withThrowingTaskGroup(of: Void.self) { group in
        let lanes = min(options.window, options.messages)
        for lane in 0..<lanes {
            group.addTask {
                var body = [UInt8](repeating: 0, count: options.bodyBytes)
                for _ in stride(from: lane, to: options.messages, by: lanes) {
                    withUnsafeBytes(of: monotonicNanoseconds()) { stamp in
                        body.replaceSubrange(0..<stamp.count, with: stamp)
                    }
                    try await publisher.publish(body, exchange: "", routingKey: options.queue, properties: properties)
                }
            }
        }
        try await group.waitForAll()
    }
}

private func receive(_ count: Int, from deliveries: AMQPConsumer) async throws -> (Histogram<UInt64>, UInt64) {
    var latencies = Histogram<UInt64>(highestTrackableValue: 600_000_000_000, numberOfSignificantValueDigits: .three)
    var received = 0
    for try await delivery in deliveries {
        let now = monotonicNanoseconds()
        let published = delivery.body.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        _ = latencies.record(now - published)
        try delivery.ack()
        received += 1
        if received == count { return (latencies, monotonicNanoseconds()) }
    }
    throw BenchError("the subscription ended after \(received) of \(count) messages")
}

private func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

/// User plus system time of the whole process, as the C client counts it.
private func processCPUNanoseconds() -> UInt64 {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    let seconds = UInt64(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
    let microseconds = UInt64(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec)
    return seconds * 1_000_000_000 + microseconds * 1_000
}
