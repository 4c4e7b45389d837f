import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import Synchronization
import SwitchboardService
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A health source the test switches by hand.
private final class SwitchedHealth: HealthReporting {
    private let live = Mutex<HealthStatus>(.healthy)
    private let ready = Mutex<HealthStatus>(.unhealthy(reason: "shard 0 is catching up"))

    func liveness() -> HealthStatus { live.withLock { $0 } }
    func readiness() -> HealthStatus { ready.withLock { $0 } }
    func setLiveness(_ status: HealthStatus) { live.withLock { $0 = status } }
    func setReadiness(_ status: HealthStatus) { ready.withLock { $0 = status } }
}

private struct Fetched {
    let status: Int
    let body: String
    let contentType: String?
}

private func fetch(_ port: Int, _ path: String) async throws -> Fetched {
    let url = try #require(URL(string: "http://127.0.0.1:\(port)\(path)"))
    let (data, response) = try await URLSession.shared.data(from: url)
    let http = try #require(response as? HTTPURLResponse)
    return Fetched(
        status: http.statusCode,
        body: String(decoding: data, as: UTF8.self),
        contentType: http.value(forHTTPHeaderField: "Content-Type")
    )
}

/// Runs the operations server on a free port for the duration of `body`.
private func withRunningServer(
    health: some HealthReporting,
    registry: PrometheusCollectorRegistry,
    _ body: (_ port: Int) async throws -> Void
) async throws {
    let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
    let logger = Logger(label: "operations-server-test")
    let server = OperationsServer.application(
        host: "127.0.0.1",
        port: 0,
        health: health,
        registry: registry,
        logger: logger,
        onServerRunning: { port in portContinuation.yield(port) }
    )
    let serviceGroup = ServiceGroup(configuration: .init(services: [server], logger: logger))
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await serviceGroup.run() }
        var iterator = ports.makeAsyncIterator()
        let port = try #require(await iterator.next())
        try await body(port)
        await serviceGroup.triggerGracefulShutdown()
        try await group.waitForAll()
    }
}

@Suite struct OperationsServerTests {
    @Test func metricsServePrometheusTextWithACounterWeIncrement() async throws {
        let registry = PrometheusCollectorRegistry()
        let factory = PrometheusMetricsFactory(registry: registry)
        let counter = Counter(label: "switchboard_test_inputs_total", dimensions: [("service", "router")], factory: factory)
        counter.increment(by: 3)

        try await withRunningServer(health: SwitchedHealth(), registry: registry) { port in
            let first = try await fetch(port, "/metrics")
            #expect(first.status == 200)
            #expect(first.contentType == OperationsServer.metricsContentType)
            #expect(first.body.contains("# TYPE switchboard_test_inputs_total counter"))
            #expect(first.body.contains(#"switchboard_test_inputs_total{service="router"} 3"#))

            counter.increment()
            let second = try await fetch(port, "/metrics")
            #expect(second.body.contains(#"switchboard_test_inputs_total{service="router"} 4"#))
        }
    }

    /// The services' factory counts timer lateness in buckets that tell 30 ms from 50 ms (a registry's
    /// defaults go from 25 straight to 50), a batch and its stages in buckets from 0.1 ms (the defaults start
    /// at 5 ms), a takeover's catch-up up to 300 s (the defaults stop at 10), and keeps the defaults for the rest.
    @Test func timersAreCountedInBucketsFineEnoughForWhatTheyShow() {
        let registry = PrometheusCollectorRegistry()
        let factory = ServiceMetrics.factory(registry: registry)
        let dimensions = [("service", "router"), ("shard", "0")]
        func record(_ label: String, _ duration: Duration, stage: String? = nil) {
            Metrics.Timer(label: label, dimensions: dimensions + (stage.map { [("stage", $0)] } ?? []), factory: factory)
                .record(duration: duration)
        }
        record("switchboard_timer_lateness_seconds", .milliseconds(28))
        record("switchboard_batch_processing_seconds", .microseconds(300))
        record("switchboard_stage_seconds", .microseconds(300), stage: "apply")
        record("switchboard_catch_up_seconds", .seconds(20))
        record("switchboard_snapshot_encode_seconds", .milliseconds(28))
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        let text = String(decoding: buffer, as: UTF8.self)
        let labels = #"{service="router",shard="0",le="#
        #expect(text.contains(#"switchboard_timer_lateness_seconds_bucket\#(labels)"0.025"} 0"#))
        #expect(text.contains(#"switchboard_timer_lateness_seconds_bucket\#(labels)"0.03"} 1"#))
        #expect(text.contains(#"switchboard_batch_processing_seconds_bucket\#(labels)"0.00025"} 0"#))
        #expect(text.contains(#"switchboard_batch_processing_seconds_bucket\#(labels)"0.0005"} 1"#))
        #expect(text.contains(#"switchboard_stage_seconds_bucket{service="router",shard="0",stage="apply",le="0.0005"} 1"#))
        #expect(text.contains(#"switchboard_catch_up_seconds_bucket\#(labels)"10.0"} 0"#))
        #expect(text.contains(#"switchboard_catch_up_seconds_bucket\#(labels)"30.0"} 1"#))
        #expect(!text.contains(#"switchboard_snapshot_encode_seconds_bucket\#(labels)"0.03"}"#))
        #expect(text.contains(#"switchboard_snapshot_encode_seconds_bucket\#(labels)"0.05"} 1"#))
    }

    @Test func readyIs503WithAReasonUntilReadinessFlips() async throws {
        let health = SwitchedHealth()
        try await withRunningServer(health: health, registry: PrometheusCollectorRegistry()) { port in
            let before = try await fetch(port, "/health/ready")
            #expect(before.status == 503)
            #expect(before.contentType?.hasPrefix("application/json") == true)
            let reason = try JSONSerialization.jsonObject(with: Data(before.body.utf8)) as? [String: String]
            #expect(reason == ["status": "not ready", "reason": "shard 0 is catching up"])

            health.setReadiness(.healthy)
            let after = try await fetch(port, "/health/ready")
            #expect(after.status == 200)
            #expect(try JSONSerialization.jsonObject(with: Data(after.body.utf8)) as? [String: String] == ["status": "ready"])

        }
    }

    @Test func liveIs503WithAReasonWhenTheConnectionIsGone() async throws {
        let health = SwitchedHealth()
        try await withRunningServer(health: health, registry: PrometheusCollectorRegistry()) { port in
            let before = try await fetch(port, "/health/live")
            #expect(before.status == 200)
            #expect(try JSONSerialization.jsonObject(with: Data(before.body.utf8)) as? [String: String] == ["status": "live"])

            health.setLiveness(.unhealthy(reason: "no AMQP connection I/O thread is running"))
            let after = try await fetch(port, "/health/live")
            #expect(after.status == 503)
            #expect(
                try JSONSerialization.jsonObject(with: Data(after.body.utf8)) as? [String: String]
                    == ["status": "not live", "reason": "no AMQP connection I/O thread is running"]
            )
        }
    }

    @Test func unknownPathsAreNotFound() async throws {
        try await withRunningServer(health: SwitchedHealth(), registry: PrometheusCollectorRegistry()) { port in
            let missing = try await fetch(port, "/health")
            #expect(missing.status == 404)
        }
    }
}
