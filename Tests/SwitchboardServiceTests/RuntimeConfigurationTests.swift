import SwitchboardAMQP
import SwitchboardRuntime
import SwitchboardService
import Testing

@Suite struct RuntimeConfigurationTests {
    @Test func everyTunableReachesTheRuntime() async throws {
        let request = try await ConfigurationLoader.load(
            defaults: .notifier,
            arguments: [
                "switchboard-notifier", "--amqp-url", "amqp://u:p@broker:5680/desk", "--shards-count", "8",
                "--shards-consume", "5,1", "--amqp-prefetch", "64", "--amqp-confirm-window", "32",
                "--snapshot-every-entries", "500", "--snapshot-every-seconds", "12",
                "--pulse-interval-milliseconds", "250", "--journal-max-age", "2D", "--instance-name", "n-1",
            ],
            environment: [:],
            hostName: "host",
            processID: 7
        )
        guard case .run(let configuration) = request else {
            Issue.record("expected a configuration")
            return
        }
        let runtime = configuration.runtimeConfiguration
        #expect(runtime.amqp == (try AMQPConfiguration(url: "amqp://u:p@broker:5680/desk")))
        #expect(runtime.shardCount == 8)
        #expect(runtime.shards == [1, 5])
        #expect(runtime.prefetch == 64)
        #expect(runtime.confirmWindow == 32)
        #expect(runtime.snapshotEveryEntries == 500)
        #expect(runtime.snapshotEvery == .seconds(12))
        #expect(runtime.pulseInterval == .milliseconds(250))
        #expect(runtime.retention.journalMaxAge == "2D")
        #expect(runtime.instanceName == "n-1")
    }
}
