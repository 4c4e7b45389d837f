// Codable for the contract's messages, in their wire form (PROTOCOL.md, "Envelope"): one flat JSON object
// holding `v`, `type`, the envelope fields and the type-specific fields side by side. Bodies read and
// write `type` and their own fields; messages add the envelope around them in the same object.
//
// Router, workstation and outbound messages get their `id` when published, so their Codable form
// leaves it out and `WireCodec` adds it. Decoding a message throws `ContractError` naming the
// message type once it is known.

// MARK: - Envelope

enum Envelope {
    /// Reads `v` and `type`: a higher (or lower) major version than this contract's is rejected before
    /// anything else is read, since its fields may mean something else.
    static func versionAndType(_ container: KeyedDecodingContainer<FieldKey>) throws -> String {
        do {
            let version = try container.integer("v", IntegerRule(Int64.min...Int64.max))
            guard version == Int64(WireCodec.contractVersion) else {
                throw ContractError(problem: "unsupported contract version \(version)")
            }
            return try container.required("type", as: String.self)
        } catch let error as DecodingError {
            throw ContractError(error, messageType: nil)
        }
    }

    /// Runs `read`, turning its decoding errors into contract errors that name `type`.
    static func reading<Value>(_ type: String, _ read: () throws -> Value) throws -> Value {
        do {
            return try read()
        } catch let error as DecodingError {
            throw ContractError(error, messageType: type)
        }
    }

    static func unknownType(_ type: String) -> ContractError {
        ContractError(problem: "unknown message type \"\(type)\"")
    }
}

extension ContractError {
    /// The contract's wording for a decoding failure at a field path such as `settings.ringMs` or `groups[1]`.
    init(_ error: DecodingError, messageType: String?) {
        func path(_ keys: [any CodingKey]) -> String? {
            guard !keys.isEmpty else { return nil }
            var text = ""
            for key in keys {
                if let index = key.intValue {
                    text += "[\(index)]"
                } else {
                    text += text.isEmpty ? key.stringValue : ".\(key.stringValue)"
                }
            }
            return text
        }
        switch error {
        case .keyNotFound(let key, let context):
            self.init(messageType: messageType, field: path(context.codingPath + [key]), problem: "is required")
        case .valueNotFound(_, let context):
            self.init(messageType: messageType, field: path(context.codingPath), problem: "is required")
        case .typeMismatch(let type, let context):
            guard let field = path(context.codingPath) else {
                self.init(messageType: messageType, problem: "body must be a JSON object")
                return
            }
            let expected =
                switch type {
                case is String.Type: "must be a string"
                case is Bool.Type: "must be a boolean"
                case is any BinaryInteger.Type: "must be an integer"
                case is any BinaryFloatingPoint.Type: "must be a number"
                case is [Any].Type: "must be an array"
                default: "must be an object"
                }
            self.init(messageType: messageType, field: field, problem: expected)
        case .dataCorrupted(let context):
            guard let field = path(context.codingPath) else {
                self.init(messageType: messageType, problem: "body is not valid JSON")
                return
            }
            self.init(messageType: messageType, field: field, problem: context.debugDescription)
        @unknown default:
            self.init(messageType: messageType, problem: String(describing: error))
        }
    }
}

// MARK: - Inbound (`switchboard.in`)

extension InboundBody: Codable {
    /// The message `type`, which is also the routing key on `switchboard.in`.
    public var type: String {
        switch self {
        case .conversationRequested: "conversation.requested"
        case .conversationEnded: "conversation.ended"
        case .messagePosted: "message.posted"
        case .agentStatus: "agent.status"
        case .offerAccept: "offer.accept"
        case .offerDecline: "offer.decline"
        case .sessionEnd: "session.end"
        case .sessionTransfer: "session.transfer"
        case .agentSync: "agent.sync"
        case .deskConfigure: "desk.configure"
        case .agentUpsert: "agent.upsert"
        case .agentRemove: "agent.remove"
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: FieldKey.self)
        let type = try c.required("type", as: String.self)
        self = try Envelope.reading(type) {
            switch type {
            case "conversation.requested":
                return .conversationRequested(try ConversationRequest(from: decoder))
            case "conversation.ended":
                return .conversationEnded(conversation: try c.required("conversation"), by: try c.required("by"))
            case "message.posted":
                return .messagePosted(try PostedMessage(from: decoder))
            case "agent.status":
                return .agentStatus(agent: try c.required("agent"), status: try c.required("status"))
            case "offer.accept":
                return .offerAccept(
                    agent: try c.required("agent"), conversation: try c.required("conversation"),
                    offer: try c.required("offer"))
            case "offer.decline":
                return .offerDecline(
                    agent: try c.required("agent"), conversation: try c.required("conversation"),
                    offer: try c.required("offer"), reason: try c.optional("reason"))
            case "session.end":
                return .sessionEnd(agent: try c.required("agent"), conversation: try c.required("conversation"))
            case "session.transfer":
                return .sessionTransfer(
                    agent: try c.required("agent"), conversation: try c.required("conversation"),
                    to: try TransferTarget.decodeIfPresent(from: decoder))
            case "agent.sync":
                return .agentSync(agent: try c.required("agent"))
            case "desk.configure":
                return .deskConfigure(try c.required("settings"))
            case "agent.upsert":
                return .agentUpsert(try AgentProfile(from: decoder))
            case "agent.remove":
                return .agentRemove(agent: try c.required("agent"))
            default:
                throw Envelope.unknownType(type)
            }
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: FieldKey.self)
        try c.encode(type, forKey: "type")
        switch self {
        case .conversationRequested(let request):
            try request.encode(to: encoder)
        case .conversationEnded(let conversation, let by):
            try c.encode(conversation, forKey: "conversation")
            try c.encode(by, forKey: "by")
        case .messagePosted(let message):
            try message.encode(to: encoder)
        case .agentStatus(let agent, let status):
            try c.encode(agent, forKey: "agent")
            try c.encode(status, forKey: "status")
        case .offerAccept(let agent, let conversation, let offer):
            try c.encode(agent, forKey: "agent")
            try c.encode(conversation, forKey: "conversation")
            try c.encode(offer, forKey: "offer")
        case .offerDecline(let agent, let conversation, let offer, let reason):
            try c.encode(agent, forKey: "agent")
            try c.encode(conversation, forKey: "conversation")
            try c.encode(offer, forKey: "offer")
            try c.encodeOptional(reason, forKey: "reason")
        case .sessionEnd(let agent, let conversation):
            try c.encode(agent, forKey: "agent")
            try c.encode(conversation, forKey: "conversation")
        case .sessionTransfer(let agent, let conversation, let target):
            try c.encode(agent, forKey: "agent")
            try c.encode(conversation, forKey: "conversation")
            try target?.encode(to: encoder)
        case .agentSync(let agent):
            try c.encode(agent, forKey: "agent")
        case .deskConfigure(let patch):
            try c.encode(patch, forKey: "settings")
        case .agentUpsert(let profile):
            try profile.encode(to: encoder)
        case .agentRemove(let agent):
            try c.encode(agent, forKey: "agent")
        }
    }
}

/// The Codable form is the wire form; `publisher` is not part of it (it comes from the AMQP `user_id`,
/// never from the body, so a body cannot claim to come from someone else).
extension InboundMessage: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: FieldKey.self)
        let type = try Envelope.versionAndType(c)
        self = try Envelope.reading(type) {
            InboundMessage(
                id: try c.required("id"), desk: try c.required("desk"), at: try c.required("at"),
                body: try InboundBody(from: decoder))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: FieldKey.self)
        try c.encode(WireCodec.contractVersion, forKey: "v")
        try body.encode(to: encoder)
        try c.encode(id, forKey: "id")
        try c.encode(desk, forKey: "desk")
        try c.encode(at, forKey: "at")
    }
}

// MARK: - Router events (`switchboard.events`)

extension RouterEventBody: Codable {
    /// The event `type`, which is also the routing key on `switchboard.events`.
    public var type: String {
        switch self {
        case .deskConfigured: "desk.configured"
        case .agentChanged: "agent.changed"
        case .conversationQueued: "conversation.queued"
        case .offerMade: "offer.made"
        case .offerExpired: "offer.expired"
        case .offerDeclined: "offer.declined"
        case .offerWithdrawn: "offer.withdrawn"
        case .conversationAssigned: "conversation.assigned"
        case .conversationEnded: "conversation.ended"
        case .commandRejected: "command.rejected"
        case .agentState: "agent.state"
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: FieldKey.self)
        let type = try c.required("type", as: String.self)
        self = try Envelope.reading(type) {
            switch type {
            case "desk.configured":
                return .deskConfigured(settings: try c.required("settings"))
            case "agent.changed":
                return .agentChanged(
                    agent: try c.required("agent"), status: try c.required("status"),
                    capacity: Int(try c.integer("capacity", .count)), load: Int(try c.integer("load", .count)),
                    groups: try c.required("groups"), reason: try c.required("reason"))
            case "conversation.queued":
                return .conversationQueued(
                    conversation: try c.required("conversation"), user: try c.required("user"),
                    position: Int(try c.integer("position", .count)), reason: try c.required("reason"))
            case "offer.made":
                return .offerMade(
                    conversation: try c.required("conversation"), user: try c.required("user"),
                    agent: try c.required("agent"), offer: try c.required("offer"),
                    attempt: Int(try c.integer("attempt", .count)), expiresAt: try c.required("expiresAt"),
                    ringMs: try c.integer("ringMs", .positiveDuration))
            case "offer.expired":
                return .offerExpired(
                    conversation: try c.required("conversation"), agent: try c.required("agent"),
                    offer: try c.required("offer"))
            case "offer.declined":
                return .offerDeclined(
                    conversation: try c.required("conversation"), agent: try c.required("agent"),
                    offer: try c.required("offer"), reason: try c.optional("reason"))
            case "offer.withdrawn":
                return .offerWithdrawn(
                    conversation: try c.required("conversation"), agent: try c.required("agent"),
                    offer: try c.required("offer"), reason: try c.required("reason"))
            case "conversation.assigned":
                return .conversationAssigned(
                    conversation: try c.required("conversation"), user: try c.required("user"),
                    agent: try c.required("agent"), offer: try c.optional("offer"), mode: try c.required("mode"))
            case "conversation.ended":
                return .conversationEnded(
                    conversation: try c.required("conversation"), agent: try c.optional("agent"),
                    reason: try c.required("reason"))
            case "command.rejected":
                return .commandRejected(try CommandRejection(from: decoder))
            case "agent.state":
                return .agentState(try AgentState(from: decoder))
            default:
                throw Envelope.unknownType(type)
            }
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: FieldKey.self)
        try c.encode(type, forKey: "type")
        switch self {
        case .deskConfigured(let settings):
            try c.encode(settings, forKey: "settings")
        case .agentChanged(let agent, let status, let capacity, let load, let groups, let reason):
            try c.encode(agent, forKey: "agent")
            try c.encode(status, forKey: "status")
            try c.encode(capacity, forKey: "capacity")
            try c.encode(load, forKey: "load")
            try c.encode(groups, forKey: "groups")
            try c.encode(reason, forKey: "reason")
        case .conversationQueued(let conversation, let user, let position, let reason):
            try c.encode(conversation, forKey: "conversation")
            try c.encode(user, forKey: "user")
            try c.encode(position, forKey: "position")
            try c.encode(reason, forKey: "reason")
        case .offerMade(let conversation, let user, let agent, let offer, let attempt, let expiresAt, let ringMs):
            try c.encode(conversation, forKey: "conversation")
            try c.encode(user, forKey: "user")
            try c.encode(agent, forKey: "agent")
            try c.encode(offer, forKey: "offer")
            try c.encode(attempt, forKey: "attempt")
            try c.encode(expiresAt, forKey: "expiresAt")
            try c.encode(ringMs, forKey: "ringMs")
        case .offerExpired(let conversation, let agent, let offer):
            try c.encode(conversation, forKey: "conversation")
            try c.encode(agent, forKey: "agent")
            try c.encode(offer, forKey: "offer")
        case .offerDeclined(let conversation, let agent, let offer, let reason):
            try c.encode(conversation, forKey: "conversation")
            try c.encode(agent, forKey: "agent")
            try c.encode(offer, forKey: "offer")
            try c.encodeOptional(reason, forKey: "reason")
        case .offerWithdrawn(let conversation, let agent, let offer, let reason):
            try c.encode(conversation, forKey: "conversation")
            try c.encode(agent, forKey: "agent")
            try c.encode(offer, forKey: "offer")
            try c.encode(reason, forKey: "reason")
        case .conversationAssigned(let conversation, let user, let agent, let offer, let mode):
            try c.encode(conversation, forKey: "conversation")
            try c.encode(user, forKey: "user")
            try c.encode(agent, forKey: "agent")
            try c.encodeOptional(offer, forKey: "offer")
            try c.encode(mode, forKey: "mode")
        case .conversationEnded(let conversation, let agent, let reason):
            try c.encode(conversation, forKey: "conversation")
            try c.encodeOptional(agent, forKey: "agent")
            try c.encode(reason, forKey: "reason")
        case .commandRejected(let rejection):
            try rejection.encode(to: encoder)
        case .agentState(let state):
            try state.encode(to: encoder)
        }
    }
}

/// The wire form without `id` (added by `WireCodec` when publishing).
extension RouterEvent: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: FieldKey.self)
        let type = try Envelope.versionAndType(c)
        self = try Envelope.reading(type) {
            RouterEvent(
                desk: try c.required("desk"), seq: try c.sequenceNumber("seq"), at: try c.required("at"),
                body: try RouterEventBody(from: decoder))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: FieldKey.self)
        try c.encode(WireCodec.contractVersion, forKey: "v")
        try body.encode(to: encoder)
        try c.encode(desk, forKey: "desk")
        try c.encode(seq, forKey: "seq")
        try c.encode(at, forKey: "at")
    }
}

// MARK: - Workstation events (`switchboard.workstations`)

extension WorkstationEventBody: Codable {
    public var type: String {
        switch self {
        case .ring: "ring"
        case .countdown: "countdown"
        case .ringStopped: "ring.stopped"
        case .sessionStarted: "session.started"
        case .sessionEnded: "session.ended"
        case .statusChanged: "status.changed"
        case .commandRejected: "command.rejected"
        case .state: "state"
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: FieldKey.self)
        let type = try c.required("type", as: String.self)
        self = try Envelope.reading(type) {
            switch type {
            case "ring":
                return .ring(
                    conversation: try c.required("conversation"), user: try c.required("user"),
                    offer: try c.required("offer"), expiresAt: try c.required("expiresAt"),
                    remainingMs: try c.integer("remainingMs", .duration), serverTime: try c.required("serverTime"))
            case "countdown":
                return .countdown(
                    conversation: try c.required("conversation"), offer: try c.required("offer"),
                    remainingMs: try c.integer("remainingMs", .duration))
            case "ring.stopped":
                return .ringStopped(
                    conversation: try c.required("conversation"), offer: try c.required("offer"),
                    reason: try c.required("reason"))
            case "session.started":
                return .sessionStarted(
                    conversation: try c.required("conversation"), user: try c.required("user"),
                    mode: try c.required("mode"))
            case "session.ended":
                return .sessionEnded(conversation: try c.required("conversation"), reason: try c.required("reason"))
            case "status.changed":
                return .statusChanged(status: try c.required("status"), reason: try c.required("reason"))
            case "command.rejected":
                return .commandRejected(try CommandRejection(from: decoder))
            case "state":
                return .state(try AgentState(from: decoder))
            default:
                throw Envelope.unknownType(type)
            }
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: FieldKey.self)
        try c.encode(type, forKey: "type")
        switch self {
        case .ring(let conversation, let user, let offer, let expiresAt, let remainingMs, let serverTime):
            try c.encode(conversation, forKey: "conversation")
            try c.encode(user, forKey: "user")
            try c.encode(offer, forKey: "offer")
            try c.encode(expiresAt, forKey: "expiresAt")
            try c.encode(remainingMs, forKey: "remainingMs")
            try c.encode(serverTime, forKey: "serverTime")
        case .countdown(let conversation, let offer, let remainingMs):
            try c.encode(conversation, forKey: "conversation")
            try c.encode(offer, forKey: "offer")
            try c.encode(remainingMs, forKey: "remainingMs")
        case .ringStopped(let conversation, let offer, let reason):
            try c.encode(conversation, forKey: "conversation")
            try c.encode(offer, forKey: "offer")
            try c.encode(reason, forKey: "reason")
        case .sessionStarted(let conversation, let user, let mode):
            try c.encode(conversation, forKey: "conversation")
            try c.encode(user, forKey: "user")
            try c.encode(mode, forKey: "mode")
        case .sessionEnded(let conversation, let reason):
            try c.encode(conversation, forKey: "conversation")
            try c.encode(reason, forKey: "reason")
        case .statusChanged(let status, let reason):
            try c.encode(status, forKey: "status")
            try c.encode(reason, forKey: "reason")
        case .commandRejected(let rejection):
            try rejection.encode(to: encoder)
        case .state(let state):
            try state.encode(to: encoder)
        }
    }
}

/// The wire form without `id`. The body's own `agent` (in `command.rejected` and `state`) shares the
/// envelope's `agent` field: the envelope's value is written last and wins, and decoding reads it back
/// into both, so such a body always names the workstation's agent.
extension WorkstationEvent: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: FieldKey.self)
        let type = try Envelope.versionAndType(c)
        self = try Envelope.reading(type) {
            WorkstationEvent(
                desk: try c.required("desk"), agent: try c.required("agent"), seq: try c.sequenceNumber("seq"),
                at: try c.required("at"), body: try WorkstationEventBody(from: decoder))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: FieldKey.self)
        try c.encode(WireCodec.contractVersion, forKey: "v")
        try body.encode(to: encoder)
        try c.encode(desk, forKey: "desk")
        try c.encode(agent, forKey: "agent")
        try c.encode(seq, forKey: "seq")
        try c.encode(at, forKey: "at")
    }
}

// MARK: - Outbound (`switchboard.outbound`)

extension OutboundBody: Codable {
    public var type: String {
        switch self {
        case .closureMessage: "closure.message"
        case .inactivityWarning: "inactivity.warning"
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: FieldKey.self)
        let type = try c.required("type", as: String.self)
        self = try Envelope.reading(type) {
            switch type {
            case "closure.message":
                return .closureMessage(
                    conversation: try c.required("conversation"), user: try c.required("user"),
                    text: try c.userText("text"), idempotencyKey: try c.required("idempotencyKey"))
            case "inactivity.warning":
                return .inactivityWarning(
                    conversation: try c.required("conversation"), user: try c.required("user"),
                    text: try c.userText("text"), idempotencyKey: try c.required("idempotencyKey"))
            default:
                throw Envelope.unknownType(type)
            }
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: FieldKey.self)
        try c.encode(type, forKey: "type")
        switch self {
        case .closureMessage(let conversation, let user, let text, let idempotencyKey),
             .inactivityWarning(let conversation, let user, let text, let idempotencyKey):
            try c.encode(conversation, forKey: "conversation")
            try c.encode(user, forKey: "user")
            try c.encode(text, forKey: "text")
            try c.encode(idempotencyKey, forKey: "idempotencyKey")
        }
    }
}

/// The wire form without `id`.
extension OutboundMessage: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: FieldKey.self)
        let type = try Envelope.versionAndType(c)
        self = try Envelope.reading(type) {
            OutboundMessage(desk: try c.required("desk"), at: try c.required("at"), body: try OutboundBody(from: decoder))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: FieldKey.self)
        try c.encode(WireCodec.contractVersion, forKey: "v")
        try body.encode(to: encoder)
        try c.encode(desk, forKey: "desk")
        try c.encode(at, forKey: "at")
    }
}
