import HeapModule

// Derived indexes: rebuilt from the desk's agents and conversations after a snapshot is loaded, never encoded.
// Entries are removed lazily: a heap may hold stale entries, which are recognised and dropped when they
// reach the top. Every entry has a unique key, so the order in which valid entries come out never depends
// on how the heap was built.

/// An eligible agent's place in an agent index; lower comes first.
struct AgentRankEntry: Comparable, Sendable {
    let first: Int64
    let second: Int64
    let agent: AgentID
    let version: UInt64

    init(agent: RouterAgent, policy: RoutingPolicy) {
        let idleSince = agent.lastRoutedAt?.millisecondsSinceEpoch ?? Int64.min
        switch policy {
        case .longestIdle:
            (first, second) = (idleSince, 0)
        case .leastBusy:
            (first, second) = (Int64(agent.load), idleSince)
        case .roundRobin:
            (first, second) = (agent.roundRobinTurn, 0)
        }
        self.agent = agent.id
        self.version = agent.indexVersion
    }

    static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.first, lhs.second, lhs.agent, lhs.version) < (rhs.first, rhs.second, rhs.agent, rhs.version)
    }
}

/// Agents who take offers, per group (`nil`: all agents), best first for the desk's routing policy.
struct AgentIndex: Sendable {
    var heaps: [GroupID?: Heap<AgentRankEntry>] = [:]
    /// Entries in all heaps, stale ones included.
    var entryCount = 0
    var entryCountAfterRebuild = 0
}

/// A waiting conversation's place in its group's queue: higher priority first, then lower ticket.
/// Tickets at the tail count up from 1, tickets at the head count down from 0.
struct WaitingTicket: Comparable, Sendable {
    let priority: Int
    let ticket: Int64
    let conversation: ConversationID

    static func < (lhs: Self, rhs: Self) -> Bool {
        (rhs.priority, lhs.ticket) < (lhs.priority, rhs.ticket)
    }
}

/// The desk's waiting conversations, one queue per group (`nil`: conversations asking for no group).
struct WaitingQueues: Sendable {
    var heaps: [GroupID?: Heap<WaitingTicket>] = [:]
    /// Waiting conversations per priority, for their position in the desk's queue.
    var countByPriority: [Int: Int] = [:]
    var count = 0
    /// Tickets in all heaps, stale ones included.
    var ticketCount = 0

    /// Conversations that come before a newcomer of `priority` placed at the head (`includingEqual` false)
    /// or tail (`includingEqual` true) of its priority.
    func countAhead(of priority: Int, includingEqual: Bool) -> Int {
        var ahead = 0
        for (level, count) in countByPriority where level > priority || (includingEqual && level == priority) {
            ahead += count
        }
        return ahead
    }

    mutating func add(_ ticket: WaitingTicket, group: GroupID?) {
        heaps[group, default: Heap()].insert(ticket)
        ticketCount += 1
        count += 1
        countByPriority[ticket.priority, default: 0] += 1
    }

    /// Counts a conversation out of the queue; its ticket stays in the heap, stale.
    mutating func forget(priority: Int) {
        count -= 1
        let remaining = countByPriority[priority, default: 1] - 1
        countByPriority[priority] = remaining == 0 ? nil : remaining
    }
}

/// When a ring expires. Ordered by time, then desk and offer, so expiries at the same instant fire in one order.
struct RingDeadline: Comparable, Sendable {
    let at: Instant
    let desk: DeskID
    let offer: Int64
    let conversation: ConversationID

    static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.at, lhs.desk, lhs.offer) < (rhs.at, rhs.desk, rhs.offer)
    }

    static func == (lhs: Self, rhs: Self) -> Bool {
        (lhs.at, lhs.desk, lhs.offer) == (rhs.at, rhs.desk, rhs.offer)
    }
}
