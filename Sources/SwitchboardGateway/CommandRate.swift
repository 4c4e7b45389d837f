/// A token bucket for the commands of one page: `burst` at once, then `perSecond` on average. A person clicking
/// stays far below it; a script on a sign-in link does not.
public struct CommandRate: Sendable {
    public static let burst = 20.0
    public static let perSecond = 10.0

    private let burst: Double
    private let perSecond: Double
    private var tokens: Double
    private var last: ContinuousClock.Instant

    public init(burst: Double = Self.burst, perSecond: Double = Self.perSecond, now: ContinuousClock.Instant) {
        self.burst = burst
        self.perSecond = perSecond
        tokens = burst
        last = now
    }

    /// Whether one more command may go now; if so, it is counted.
    public mutating func take(at now: ContinuousClock.Instant) -> Bool {
        let seconds = last.duration(to: now) / .seconds(1)
        last = now
        tokens = min(burst, tokens + max(0, seconds) * perSecond)
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}
