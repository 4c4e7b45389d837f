/// The last `capacity` ids inserted, to tell a message seen lately from a new one in bounded memory.
struct RecentIDs: Sendable {
    private let capacity: Int
    private var members: Set<String> = []
    /// Insertion order, used as a ring once full: `oldest` is the next to forget.
    private var order: [String] = []
    private var oldest = 0

    init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
    }

    /// False when `id` is among the last `capacity` ids inserted; otherwise remembers it.
    mutating func insert(_ id: String) -> Bool {
        guard members.insert(id).inserted else { return false }
        if order.count < capacity {
            order.append(id)
        } else {
            members.remove(order[oldest])
            order[oldest] = id
            oldest = (oldest + 1) % capacity
        }
        return true
    }
}
