public enum RoutingPolicy: String, Hashable, Sendable, CaseIterable {
    case longestIdle, leastBusy, roundRobin
}

/// A desk's policy (PROTOCOL.md, "Desk settings and their defaults").
public struct DeskSettings: Hashable, Sendable {
    public var ringMs: Milliseconds = 30_000
    public var countdownEveryMs: Milliseconds = 1_000
    public var autoAccept: Bool = false
    public var maxOfferAttempts: Int = 3
    public var missesBeforeBreak: Int = 3
    public var routing: RoutingPolicy = .longestIdle
    public var inactivityMs: Milliseconds = 300_000
    public var closureText: String = "This conversation has been closed because we did not hear back from you. Write again any time."
    public var warningMs: Milliseconds = 0
    public var warningText: String = "Are you still there? This conversation will close soon if we do not hear from you."

    public init() {}

    public static let defaults = DeskSettings()
}

/// A `desk.configure` body: a partial object changes only the fields it names.
public struct DeskSettingsPatch: Hashable, Sendable {
    public var ringMs: Milliseconds?
    public var countdownEveryMs: Milliseconds?
    public var autoAccept: Bool?
    public var maxOfferAttempts: Int?
    public var missesBeforeBreak: Int?
    public var routing: RoutingPolicy?
    public var inactivityMs: Milliseconds?
    public var closureText: String?
    public var warningMs: Milliseconds?
    public var warningText: String?

    public init(
        ringMs: Milliseconds? = nil, countdownEveryMs: Milliseconds? = nil, autoAccept: Bool? = nil,
        maxOfferAttempts: Int? = nil, missesBeforeBreak: Int? = nil, routing: RoutingPolicy? = nil,
        inactivityMs: Milliseconds? = nil, closureText: String? = nil, warningMs: Milliseconds? = nil,
        warningText: String? = nil
    ) {
        self.ringMs = ringMs
        self.countdownEveryMs = countdownEveryMs
        self.autoAccept = autoAccept
        self.maxOfferAttempts = maxOfferAttempts
        self.missesBeforeBreak = missesBeforeBreak
        self.routing = routing
        self.inactivityMs = inactivityMs
        self.closureText = closureText
        self.warningMs = warningMs
        self.warningText = warningText
    }

    public func applied(to settings: DeskSettings) -> DeskSettings {
        var result = settings
        if let ringMs { result.ringMs = ringMs }
        if let countdownEveryMs { result.countdownEveryMs = countdownEveryMs }
        if let autoAccept { result.autoAccept = autoAccept }
        if let maxOfferAttempts { result.maxOfferAttempts = maxOfferAttempts }
        if let missesBeforeBreak { result.missesBeforeBreak = missesBeforeBreak }
        if let routing { result.routing = routing }
        if let inactivityMs { result.inactivityMs = inactivityMs }
        if let closureText { result.closureText = closureText }
        if let warningMs { result.warningMs = warningMs }
        if let warningText { result.warningText = warningText }
        return result
    }
}
