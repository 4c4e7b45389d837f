/// SplitMix64: small, fast and the same on every platform, so a seed replays exactly.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) {
        state = seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A generator for a derived stream (e.g. one episode of a run), independent of this one's position.
    public static func derived(from seed: UInt64, _ salt: UInt64) -> SeededRandom {
        var mixer = SeededRandom(seed: seed ^ (salt &* 0xD1B5_4A32_D192_ED03))
        return SeededRandom(seed: mixer.next())
    }
}
