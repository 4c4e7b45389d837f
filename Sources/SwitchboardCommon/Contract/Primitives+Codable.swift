// Codable for the contract's scalar values: each is a single JSON value, validated on decode.

/// A contract value carried as one JSON string and validated whenever it is made, decoding included.
public protocol ValidatedString: Codable, Hashable, Sendable {
    var rawValue: String { get }
    init(_ rawValue: String) throws(ContractError)
}

extension ValidatedString {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let raw = try container.decode(String.self)
        do {
            try self.init(raw)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.problem)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

extension Identifier: ValidatedString {}
extension MessageID: ValidatedString {}
extension OfferToken: ValidatedString {}

/// On the wire and in snapshots an `Instant` is an RFC 3339 UTC string with milliseconds,
/// e.g. `2026-11-25T18:00:00.123Z`.
extension Instant: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let instant = Instant(rfc3339: text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "must be an RFC 3339 UTC time with milliseconds, e.g. 2026-11-25T18:00:00.123Z")
        }
        self = instant
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rfc3339)
    }
}

extension Instant {
    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`; also accepts no fraction or 1 to 9 fraction digits (truncated to ms)
    /// and a `+00:00` offset, since both are valid RFC 3339 UTC.
    public init?(rfc3339 text: String) {
        let bytes = Array(text.utf8)
        func digits(_ range: Range<Int>) -> Int64? {
            guard range.upperBound <= bytes.count else { return nil }
            var value: Int64 = 0
            for index in range {
                let byte = bytes[index]
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
                value = value * 10 + Int64(byte - UInt8(ascii: "0"))
            }
            return value
        }
        func byte(_ index: Int, is expected: Character) -> Bool {
            index < bytes.count && (bytes[index] == expected.asciiValue! || bytes[index] == Character(expected.lowercased()).asciiValue!)
        }
        guard bytes.count >= 20,
              let year = digits(0..<4), byte(4, is: "-"), let month = digits(5..<7), byte(7, is: "-"),
              let day = digits(8..<10), byte(10, is: "T"), let hour = digits(11..<13), byte(13, is: ":"),
              let minute = digits(14..<16), byte(16, is: ":"), let second = digits(17..<19),
              (1...12).contains(month), (1...Self.daysIn(month: month, year: year)).contains(day),
              hour < 24, minute < 60, second < 60
        else { return nil }
        var index = 19
        var millis: Int64 = 0
        if byte(index, is: ".") {
            index += 1
            let start = index
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            let count = index - start
            guard (1...9).contains(count), let fraction = digits(start..<min(start + 3, index)) else { return nil }
            millis = fraction * [100, 10, 1][min(count, 3) - 1]
        }
        let rest = bytes[index...]
        guard rest.elementsEqual("Z".utf8) || rest.elementsEqual("z".utf8) || rest.elementsEqual("+00:00".utf8) else {
            return nil
        }
        let days = Self.daysFromCivil(year: year, month: month, day: day)
        let seconds = ((days * 24 + hour) * 60 + minute) * 60 + second
        self.init(millisecondsSinceEpoch: seconds * 1000 + millis)
    }

    public var rfc3339: String {
        let millis = millisecondsSinceEpoch
        var days = millis / 86_400_000
        var inDay = millis % 86_400_000
        if inDay < 0 {
            inDay += 86_400_000
            days -= 1
        }
        let (year, month, day) = Self.civilFromDays(days)
        func pad(_ value: Int64, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        let hour = inDay / 3_600_000, minute = inDay / 60_000 % 60, second = inDay / 1000 % 60, milli = inDay % 1000
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(hour, 2)):\(pad(minute, 2)):\(pad(second, 2)).\(pad(milli, 3))Z"
    }

    private static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    // Howard Hinnant's days_from_civil / civil_from_days.
    private static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    private static func civilFromDays(_ days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}

extension RoutingPolicy: ContractEnum {}
extension AgentStatus: ContractEnum {}
extension EndedBy: ContractEnum {}
extension MessageAuthor: ContractEnum {}
extension AgentChangeReason: ContractEnum {}
extension QueueReason: ContractEnum {}
extension WithdrawReason: ContractEnum {}
extension AssignMode: ContractEnum {}
extension EndReason: ContractEnum {}
extension RejectionReason: ContractEnum {}
extension RingStopReason: ContractEnum {}
extension SessionEndReason: ContractEnum {}
