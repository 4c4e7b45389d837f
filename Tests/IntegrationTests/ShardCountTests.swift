import SwitchboardAMQP
import SwitchboardTestSupport
@testable import SwitchboardRuntime
import Testing

@Suite(.stopsServices) struct ShardCountTests {
    /// An instance whose shard count is not its deployment's stops before it declares anything. With more
    /// shards it would bind new shard queues to the hash exchange and move desks to shards that know nothing
    /// of them; with fewer it would leave shards bound that it never consumes.
    @Test func anInstanceWithAnotherShardCountStopsBeforeDeclaringAnything() async throws {
        try await TestBroker.withDedicatedNode(label: "shard-count") { broker in
            func router(_ name: String, shardCount: Int) throws -> RunningService<RouterAdapter> {
                try RunningService<RouterAdapter>.start(broker, name: name, shards: [0], shardCount: shardCount)
            }
            let first = try router("router-count-2", shardCount: 2)
            try await first.waitUntilEveryShard(.active)
            try await first.stop()

            for (count, expected) in [(3, "fewer shards than 3"), (1, "more shards than 1")] {
                let refused = try router("router-count-\(count)", shardCount: count)
                let error = try #require(try await refused.waitUntilItStops())
                let invalid = try #require(error as? InvalidConfiguration, "\(error)")
                #expect(invalid.description.contains(expected))
            }
            let probe = try await broker.connect(name: "shard-count-probe")
            #expect(try await probe.queueStatus(ServiceTopology.shardQueue(.router, shard: 2)) == nil)
            #expect(try await probe.queueStatus(ServiceTopology.journal(.router, shard: 2)) == nil)
            await probe.close()

            let again = try router("router-count-2-again", shardCount: 2)
            try await again.waitUntilEveryShard(.active)
            try await again.stop()
        }
    }
}
