/// Wall-clock time in milliseconds since the Unix epoch. Cores receive it as an input and never read a clock,
/// so deadlines kept in journals and snapshots mean the same after a restart on another machine.
public struct Instant: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var millisecondsSinceEpoch: Int64

    public init(millisecondsSinceEpoch: Int64) {
        self.millisecondsSinceEpoch = millisecondsSinceEpoch
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.millisecondsSinceEpoch < rhs.millisecondsSinceEpoch }

    public static func + (lhs: Self, rhs: Milliseconds) -> Self {
        Instant(millisecondsSinceEpoch: lhs.millisecondsSinceEpoch + rhs)
    }

    public static func - (lhs: Self, rhs: Self) -> Milliseconds {
        lhs.millisecondsSinceEpoch - rhs.millisecondsSinceEpoch
    }

    public var description: String { "\(millisecondsSinceEpoch)ms" }
}

/// Durations on the wire are integer milliseconds in fields ending in `Ms`.
public typealias Milliseconds = Int64
