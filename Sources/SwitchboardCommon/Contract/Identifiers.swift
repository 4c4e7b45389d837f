/// The kinds of identifier the contract names. Each gets its own type so that an agent can never be
/// passed where a conversation is expected.
public protocol IdentifierKind: Sendable {
    /// The field name used in error messages, e.g. "agent".
    static var name: String { get }
}

public enum DeskKind: IdentifierKind { public static let name = "desk" }
public enum AgentKind: IdentifierKind { public static let name = "agent" }
public enum ConversationKind: IdentifierKind { public static let name = "conversation" }
public enum GroupKind: IdentifierKind { public static let name = "group" }
public enum UserKind: IdentifierKind { public static let name = "user" }

/// 1 to 64 characters of `A-Z a-z 0-9 _ -` (PROTOCOL.md, "Identifiers").
public struct Identifier<Kind: IdentifierKind>: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: String

    /// Validates `rawValue` against the contract's identifier rule.
    public init(_ rawValue: String) throws(ContractError) {
        guard Self.isValid(rawValue) else {
            throw ContractError(field: Kind.name, problem: "must match [A-Za-z0-9_-]{1,64}")
        }
        self.rawValue = rawValue
    }

    public static func isValid(_ candidate: String) -> Bool {
        let utf8 = candidate.utf8
        guard (1...64).contains(utf8.count) else { return false }
        return utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"):
                true
            default:
                false
            }
        }
    }

    public var description: String { rawValue }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

public typealias DeskID = Identifier<DeskKind>
public typealias AgentID = Identifier<AgentKind>
public typealias ConversationID = Identifier<ConversationKind>
public typealias GroupID = Identifier<GroupKind>
public typealias UserID = Identifier<UserKind>

/// A message's `id` (= AMQP `message_id`): 1 to 128 printable ASCII characters.
public struct MessageID: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String

    public init(_ rawValue: String) throws(ContractError) {
        guard isPrintableToken(rawValue) else {
            throw ContractError(field: "id", problem: "must be 1 to 128 printable ASCII characters")
        }
        self.rawValue = rawValue
    }

    public var description: String { rawValue }
}

/// The opaque token naming one ring of one conversation to one agent.
public struct OfferToken: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String

    public init(_ rawValue: String) throws(ContractError) {
        guard isPrintableToken(rawValue) else {
            throw ContractError(field: "offer", problem: "must be 1 to 128 printable ASCII characters")
        }
        self.rawValue = rawValue
    }

    public var description: String { rawValue }
}

/// 1 to 128 printable ASCII characters: the rule for message ids and offer tokens.
private func isPrintableToken(_ candidate: String) -> Bool {
    (1...128).contains(candidate.utf8.count) && candidate.utf8.allSatisfy { (0x21...0x7E).contains($0) }
}

/// A precise description of why a message breaks the contract,
/// e.g. `offer.accept: field agent: must match [A-Za-z0-9_-]{1,64}`.
public struct ContractError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The message type, when it is known.
    public var messageType: String?
    /// The offending field (dotted path for nested fields), when there is one.
    public var field: String?
    public var problem: String

    public init(messageType: String? = nil, field: String? = nil, problem: String) {
        self.messageType = messageType
        self.field = field
        self.problem = problem
    }

    public var description: String {
        var parts: [String] = []
        if let messageType { parts.append(messageType) }
        if let field { parts.append("field \(field)") }
        parts.append(problem)
        return parts.joined(separator: ": ")
    }
}

// Identifiers, message ids and offer tokens hold no line break, so a snapshot writes many of them as
// lines of one string (`BoundedRecall`).
extension Identifier: SnapshotLine {
    var snapshotLine: String { rawValue }
    init(snapshotLine: String) throws { try self.init(snapshotLine) }
}

extension MessageID: SnapshotLine {
    var snapshotLine: String { rawValue }
    init(snapshotLine: String) throws { try self.init(snapshotLine) }
}

extension OfferToken: SnapshotLine {
    var snapshotLine: String { rawValue }
    init(snapshotLine: String) throws { try self.init(snapshotLine) }
}
