import Foundation

/// Where the demo writes: one line per fact, coloured when stdout is a terminal that wants colour.
struct Terminal: Sendable {
    enum Tone: String, Sendable {
        case plain = "0"
        case dim = "2"
        case action = "36"
        case ring = "33"
        case good = "32"
        case bad = "31"
        case warning = "35"
        case end = "34"
    }

    let usesColour: Bool

    /// Colour only on a terminal, never with `NO_COLOR` set or `TERM=dumb` (https://no-color.org).
    static func detect(environment: [String: String] = ProcessInfo.processInfo.environment) -> Terminal {
        let wanted = isatty(STDOUT_FILENO) == 1 && environment["NO_COLOR"] == nil && environment["TERM"] != "dumb"
        return Terminal(usesColour: wanted)
    }

    func line(_ tone: Tone, _ text: String) {
        let clock = Self.clock()
        let output = usesColour ? "\u{1B}[2m\(clock)\u{1B}[0m \u{1B}[\(tone.rawValue)m\(text)\u{1B}[0m" : "\(clock) \(text)"
        print(output)
        fflush(nil)
    }

    private static func clock() -> String {
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        return String(format: "%02d:%02d:%02d", parts.tm_hour, parts.tm_min, parts.tm_sec)
    }
}
