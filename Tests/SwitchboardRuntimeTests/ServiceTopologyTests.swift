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
}
