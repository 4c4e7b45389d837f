import Foundation
import SwitchboardCommon

/// A command the agent page sends over its WebSocket, validated. The page names only what the agent
/// did; who did it (`agent`, `desk`) comes from the signed-in session, never from the page.
public enum PageCommand: Hashable, Sendable {
    case accept(conversation: ConversationID, offer: OfferToken)
    case decline(conversation: ConversationID, offer: OfferToken, reason: String?)
    case endSession(conversation: ConversationID)
    /// To one agent, to a group's queue, or (`nil`) back to the queue of the conversation's own group.
    case transfer(conversation: ConversationID, to: TransferTarget?)
    case status(AgentStatus)
    case sync

    /// The `type` values the page may send.
    public static let types = [
        "offer.accept", "offer.decline", "session.end", "session.transfer", "agent.status", "agent.sync",
    ]

    /// Frames longer than this are refused unread.
    public static let maxFrameBytes = 4 * 1024

    /// Parses one text frame; the error's message says what is wrong in words a person can act on.
    public static func parse(_ text: String) throws(PageCommandError) -> PageCommand {
        try parse(object(in: text))
    }

    /// One text frame read once: the page's `ref` of it (see `reference(in:)`) and the command, or what is wrong.
    public static func read(_ text: String) -> (reference: String?, command: Result<PageCommand, PageCommandError>) {
        let object: [String: Any]
        do {
            object = try Self.object(in: text)
        } catch {
            return (nil, .failure(error))
        }
        do {
            return (reference(in: object), .success(try parse(object)))
        } catch {
            return (reference(in: object), .failure(error))
        }
    }

    /// The page's own `ref` of a command (at most 64 characters), which the gateway's error about it repeats so
    /// the page knows which command was not taken. Read from any JSON object, a command not valid otherwise too.
    public static func reference(in text: String) -> String? {
        (try? object(in: text)).flatMap(reference(in:))
    }

    private static func reference(in object: [String: Any]) -> String? {
        guard let reference = object["ref"] as? String, reference.count <= 64 else { return nil }
        return reference
    }

    /// The frame as a JSON object; longer than `maxFrameBytes`, refused unread.
    private static func object(in text: String) throws(PageCommandError) -> [String: Any] {
        guard text.utf8.count <= maxFrameBytes else {
            throw PageCommandError("the message is \(text.utf8.count) bytes, over the limit of \(maxFrameBytes)")
        }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else {
            throw PageCommandError("the message is not a JSON object")
        }
        return object
    }

    private static func parse(_ object: [String: Any]) throws(PageCommandError) -> PageCommand {
        let fields = Fields(object: object)
        let type = try fields.string("type")
        switch type {
        case "offer.accept":
            return .accept(conversation: try fields.conversation(), offer: try fields.offer())
        case "offer.decline":
            return .decline(
                conversation: try fields.conversation(), offer: try fields.offer(), reason: try fields.optionalString("reason"))
        case "session.end":
            return .endSession(conversation: try fields.conversation())
        case "session.transfer":
            return .transfer(conversation: try fields.conversation(), to: try fields.transferTarget())
        case "agent.status":
            let status = try fields.string("status")
            guard let value = AgentStatus(rawValue: status) else {
                throw PageCommandError("status \"\(status)\" is not one of online, break, offline")
            }
            return .status(value)
        case "agent.sync":
            return .sync
        default:
            throw PageCommandError("unknown type \"\(type)\" (expected one of \(types.joined(separator: ", ")))")
        }
    }

    /// The contract message for `switchboard.in`, on behalf of `identity`.
    public func inboundMessage(for identity: AgentIdentity, id: MessageID, at: Instant) -> InboundMessage {
        let agent = identity.agent
        let body: InboundBody
        switch self {
        case .accept(let conversation, let offer):
            body = .offerAccept(agent: agent, conversation: conversation, offer: offer)
        case .decline(let conversation, let offer, let reason):
            body = .offerDecline(agent: agent, conversation: conversation, offer: offer, reason: reason)
        case .endSession(let conversation):
            body = .sessionEnd(agent: agent, conversation: conversation)
        case .transfer(let conversation, let target):
            body = .sessionTransfer(agent: agent, conversation: conversation, to: target)
        case .status(let status):
            body = .agentStatus(agent: agent, status: status)
        case .sync:
            body = .agentSync(agent: agent)
        }
        return InboundMessage(id: id, desk: identity.desk, at: at, body: body)
    }

    private struct Fields {
        let object: [String: Any]

        func string(_ name: String) throws(PageCommandError) -> String {
            guard let value = object[name] else { throw PageCommandError("the field \(name) is missing") }
            guard let text = value as? String else { throw PageCommandError("the field \(name) must be a string") }
            return text
        }

        func optionalString(_ name: String) throws(PageCommandError) -> String? {
            guard let value = object[name], !(value is NSNull) else { return nil }
            guard let text = value as? String else { throw PageCommandError("the field \(name) must be a string") }
            return text
        }

        func conversation() throws(PageCommandError) -> ConversationID {
            try identifier("conversation", ConversationID.init)
        }

        /// `toAgent` or `toGroup`, not both; neither is a transfer back to the queue.
        func transferTarget() throws(PageCommandError) -> TransferTarget? {
            let agent = try optionalString("toAgent")
            let group = try optionalString("toGroup")
            switch (agent, group) {
            case (.some, .some):
                throw PageCommandError("name toAgent or toGroup, not both")
            case (.some, nil):
                return .agent(try identifier("toAgent", AgentID.init))
            case (nil, .some):
                return .group(try identifier("toGroup", GroupID.init))
            case (nil, nil):
                return nil
            }
        }

        private func identifier<ID>(_ name: String, _ make: (String) throws -> ID) throws(PageCommandError) -> ID {
            let text = try string(name)
            do {
                return try make(text)
            } catch {
                throw PageCommandError("the field \(name) must be 1 to 64 characters of A-Z a-z 0-9 _ -")
            }
        }

        func offer() throws(PageCommandError) -> OfferToken {
            let text = try string("offer")
            do {
                return try OfferToken(text)
            } catch {
                throw PageCommandError("the field offer must be 1 to 128 printable ASCII characters")
            }
        }
    }
}

/// Why a page's message was refused; the page gets `{"kind":"error","message":…}` with it.
public struct PageCommandError: Error, Hashable, Sendable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
