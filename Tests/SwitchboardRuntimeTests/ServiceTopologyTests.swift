import SwitchboardAMQP
import SwitchboardRuntime
import Testing

@Suite struct ServiceTopologyTests {
    /// The hash ring hands out its buckets in the order the bindings were added, and after a broker boot
    /// deploy/rabbitmq/hash-rings.sh rebuilds it in the order of the queue names. The services must bind
    /// in that same order, or the first restart would move desks to other shards.
    @Test(arguments: ServiceName.allCases)
    func shardQueuesAreBoundInTheOrderOfTheirNames(_ service: ServiceName) {
        let topology = ServiceTopology.topology(for: service, shards: 12)
        let hash = ServiceTopology.hashExchange(service)
        let bound = topology.bindings.filter { $0.source == hash }.map { binding -> String in
            guard case .queue(let queue) = binding.destination else { return "not a queue" }
            return queue
        }
        #expect(bound.count == 12)
        #expect(Set(bound) == Set((0..<12).map { ServiceTopology.shardQueue(service, shard: $0) }))
        #expect(bound == bound.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
        #expect(bound.firstIndex(of: ServiceTopology.shardQueue(service, shard: 10))!
            < bound.firstIndex(of: ServiceTopology.shardQueue(service, shard: 2))!)
    }

    /// Journal 0 is declared after every other journal, so a broker that has it has them all: a start that
    /// stopped halfway through declaring cannot look like a deployment with fewer shards.
    @Test(arguments: ServiceName.allCases)
    func shardZerosJournalIsTheLastJournalDeclared(_ service: ServiceName) {
        let journals = ServiceTopology.topology(for: service, shards: 12).queues.map(\.name).filter { $0.contains(".journal.") }
        #expect(Set(journals) == Set((0..<12).map { ServiceTopology.journal(service, shard: $0) }))
        #expect(journals.last == ServiceTopology.journal(service, shard: 0))
    }

    /// `journal.maxAge` and the segment size may change between runs: a journal that exists keeps what it was
    /// made with (a policy changes it), where declaring it again with other arguments would stop the start.
    @Test(arguments: ServiceName.allCases)
    func journalsAreDeclaredOnlyWhenMissingAndShardQueuesAlways(_ service: ServiceName) {
        let queues = ServiceTopology.topology(for: service, shards: 3).queues
        let journals = Set((0..<3).map { ServiceTopology.journal(service, shard: $0) })
        #expect(queues.filter { $0.keepsExisting }.map(\.name).sorted() == journals.sorted())
    }

    /// What an instance with 4 shards says of the deployments it may find, from the witnesses it looks up.
    @Test(arguments: ServiceName.allCases)
    func anInstanceJoinsOnlyADeploymentWithItsShardCount(_ service: ServiceName) throws {
        func deployment(_ shards: Int) -> Set<String> {
            Set((0..<shards).flatMap { [ServiceTopology.shardQueue(service, shard: $0), ServiceTopology.journal(service, shard: $0)] })
        }
        func verdict(_ existing: Set<String>) -> String? {
            let witnesses = Set(ServiceTopology.shardCountWitnesses(for: service, shards: 4))
            return ServiceTopology.shardCountMismatch(for: service, shards: 4, existing: existing.intersection(witnesses))
        }
        #expect(verdict([]) == nil, "nothing declared yet")
        #expect(verdict(deployment(4)) == nil)
        // Stopped halfway through its first declaration: shard queues and journals but journal 0.
        #expect(verdict(deployment(4).subtracting([ServiceTopology.journal(service, shard: 0)])) == nil)
        // A shard queue deleted to be declared again (deploy/README.md) leaves its journal.
        #expect(verdict(deployment(4).subtracting([ServiceTopology.shardQueue(service, shard: 3)])) == nil)

        let more = try #require(verdict(deployment(6)))
        #expect(more.contains("switchboard.\(service.rawValue).shard.4"))
        #expect(more.contains("more shards than 4"))
        let fewer = try #require(verdict(deployment(2)))
        #expect(fewer.contains("no switchboard.\(service.rawValue).journal.3"))
        #expect(fewer.contains("fewer shards than 4"))
        #expect(ServiceTopology.shardCountMismatch(for: service, shards: 1, existing: deployment(1)) == nil)
    }
}
