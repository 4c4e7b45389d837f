import Logging
import SwitchboardAMQP
@testable import SwitchboardRuntime
import SwitchboardService
import Testing

@Suite struct RuntimeHealthTests {
    /// A Router service with shards 0 and 1, its topology declared and both shards active, that never connects.
    private static func activeRouter() async throws -> RuntimeService<RouterAdapter> {
        let request = try await ConfigurationLoader.load(
            defaults: .router, arguments: ["switchboard-router", "--shards-count", "2"], environment: [:],
            hostName: "host", processID: 7)
        guard case .run(let configuration) = request else { throw HealthTestError() }
        let service = RuntimeService<RouterAdapter>(configuration: configuration, logger: Logger(label: "test"))
        service.runtime.readiness.setTopologyDeclared()
        for shard in 0..<2 { service.runtime.readiness.set(.active, shard: shard) }
        return service
    }

    @Test func readinessNamesTheConnectionWhileItIsNotThere() async throws {
        let service = try await Self.activeRouter()
        #expect(service.readiness() == .unhealthy(reason: "not connected to the broker yet"))
        #expect(service.liveness() != .healthy)

        service.runtime.readiness.setConnectionState { .reconnecting(failedAttempts: 2) }
        #expect(service.readiness() == .unhealthy(reason: "reconnecting to the broker (2 failed attempts)"))
        #expect(service.liveness() == .healthy, "the I/O thread still runs while it reconnects")

        service.runtime.readiness.setConnectionState { .closed }
        #expect(service.readiness() == .unhealthy(reason: "the broker connection is closed"))

        service.runtime.readiness.setConnectionState { .connected }
        #expect(service.readiness() == .healthy)
        service.runtime.readiness.set(.catchingUp, shard: 1)
        #expect(service.readiness() == .unhealthy(reason: "shard 1 catching up"))
    }

    /// A standby that could not read a record of its shard's journal would stop if handed the shard: it says so.
    @Test func readinessNamesAShardWhoseJournalTheInstanceCannotRead() async throws {
        let service = try await Self.activeRouter()
        service.runtime.readiness.setConnectionState { .connected }
        service.runtime.readiness.set(.standby, shard: 1)
        service.runtime.readiness.setUnreadable("a record of a newer version", shard: 1)
        #expect(service.readiness() == .unhealthy(reason: "shard 1 cannot be taken over: a record of a newer version"))
        service.runtime.readiness.setUnreadable(nil, shard: 1)
        #expect(service.readiness() == .healthy, "a snapshot after the record was read")
    }
}

private struct HealthTestError: Error {}
