import DequeModule

/// A set that remembers at most `limit` elements, forgetting the oldest first.
struct RecentSet<Element: Hashable & Codable & Sendable>: Codable, Sendable, Equatable {
    let limit: Int
    private var order: Deque<Element> = []
    private var members: Set<Element> = []

    init(limit: Int) {
        self.limit = limit
    }

    func contains(_ element: Element) -> Bool { members.contains(element) }

    mutating func insert(_ element: Element) {
        guard members.insert(element).inserted else { return }
        order.append(element)
        if order.count > limit {
            members.remove(order.removeFirst())
        }
    }

    /// The remembered elements and their order say everything; the set only speeds up lookups.
    static func == (lhs: Self, rhs: Self) -> Bool { lhs.limit == rhs.limit && lhs.order == rhs.order }

    private enum CodingKeys: String, CodingKey { case limit, order }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        limit = try container.decode(Int.self, forKey: .limit)
        order = try container.decode(Deque<Element>.self, forKey: .order)
        members = Set(order)
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(limit, forKey: .limit)
        try container.encode(order, forKey: .order)
    }
}

/// The most recent finished offers of one desk, at most `limit`, oldest forgotten first.
struct FinishedOffers: Codable, Sendable, Equatable {
    let limit: Int
    private var order: Deque<FinishedOffer> = []
    private var byToken: [OfferToken: FinishedOffer] = [:]

    init(limit: Int) {
        self.limit = limit
    }

    subscript(token: OfferToken) -> FinishedOffer? { byToken[token] }

    mutating func remember(_ offer: FinishedOffer) {
        order.append(offer)
        byToken[offer.token] = offer
        if order.count > limit {
            byToken.removeValue(forKey: order.removeFirst().token)
        }
    }

    static func == (lhs: Self, rhs: Self) -> Bool { lhs.limit == rhs.limit && lhs.order == rhs.order }

    private enum CodingKeys: String, CodingKey { case limit, order }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        limit = try container.decode(Int.self, forKey: .limit)
        order = try container.decode(Deque<FinishedOffer>.self, forKey: .order)
        byToken = Dictionary(order.map { ($0.token, $0) }, uniquingKeysWith: { _, newer in newer })
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(limit, forKey: .limit)
        try container.encode(order, forKey: .order)
    }
}
