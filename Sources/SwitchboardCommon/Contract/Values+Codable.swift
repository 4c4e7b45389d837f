// Codable for the contract's composite values. Each has one JSON form, used both on the wire (as
// PROTOCOL.md spells it) and in the cores' snapshots. Decoding validates the contract's rules.

extension JSONValue: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        // The decoder cannot say which kind of value comes next; the likeliest kinds are tried first.
        if container.decodeNil() {
            self = .null
        } else if let string = try? container.decode(String.self) {
            self = .string(string)
        } else if let number = try? container.decode(Double.self) {
            self = .number(number)
        } else if let bool = try? container.decode(Bool.self) {
            self = .bool(bool)
        } else if let array = try? container.decode([JSONValue].self) {
            self = .array(array)
        } else if let object = try? container.decode([String: JSONValue].self) {
            self = .object(object)
        } else {
            // Every other JSON value has matched by now: what is left is a number no Double can hold,
            // here or somewhere inside.
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "must hold only numbers within double range")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let bool): try container.encode(bool)
        case .number(let number): try container.encode(number)
        case .string(let string): try container.encode(string)
        case .array(let array): try container.encode(array)
        case .object(let object): try container.encode(object)
        }
    }

    /// How deeply `attributes` may nest (the object itself is depth 1).
    public static let maxAttributeDepth = 16

    /// Nesting depth: 0 for a scalar, 1 for a flat array or object.
    public var depth: Int {
        switch self {
        case .null, .bool, .number, .string: 0
        case .array(let array): 1 + (array.lazy.map(\.depth).max() ?? 0)
        case .object(let object): 1 + (object.values.lazy.map(\.depth).max() ?? 0)
        }
    }
}

extension DeskSettings: Codable {
    /// The full settings: every field is required.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: FieldKey.self)
        let patch = try DeskSettingsPatch(from: decoder)
        func present<Value>(_ value: Value?, _ key: FieldKey) throws -> Value {
            guard let value else { throw container.missing(key) }
            return value
        }
        self.init()
        ringMs = try present(patch.ringMs, "ringMs")
        countdownEveryMs = try present(patch.countdownEveryMs, "countdownEveryMs")
        autoAccept = try present(patch.autoAccept, "autoAccept")
        maxOfferAttempts = try present(patch.maxOfferAttempts, "maxOfferAttempts")
        missesBeforeBreak = try present(patch.missesBeforeBreak, "missesBeforeBreak")
        routing = try present(patch.routing, "routing")
        inactivityMs = try present(patch.inactivityMs, "inactivityMs")
        closureText = try present(patch.closureText, "closureText")
        warningMs = try present(patch.warningMs, "warningMs")
        warningText = try present(patch.warningText, "warningText")
    }

    public func encode(to encoder: any Encoder) throws {
        try DeskSettingsPatch(
            ringMs: ringMs, countdownEveryMs: countdownEveryMs, autoAccept: autoAccept,
            maxOfferAttempts: maxOfferAttempts, missesBeforeBreak: missesBeforeBreak, routing: routing,
            inactivityMs: inactivityMs, closureText: closureText, warningMs: warningMs, warningText: warningText
        ).encode(to: encoder)
    }

    /// The rule that spans two fields: a warning must come before the close it announces. It applies when
    /// both are in use (`inactivityMs > 0` and `warningMs > 0`); with `inactivityMs` 0 nothing closes and
    /// `warningMs` has no effect. The Router checks it on the settings a `desk.configure` would produce.
    public func checkWarningPrecedesClose() throws(ContractError) {
        if inactivityMs > 0, warningMs > 0, warningMs >= inactivityMs {
            throw ContractError(field: "settings.warningMs", problem: "must be less than inactivityMs")
        }
    }
}

extension DeskSettingsPatch: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: FieldKey.self)
        self.init(
            ringMs: try container.optionalInteger("ringMs", .positiveDuration),
            countdownEveryMs: try container.optionalInteger("countdownEveryMs", .duration),
            autoAccept: try container.optional("autoAccept"),
            maxOfferAttempts: try container.optionalInteger("maxOfferAttempts", .attemptCount).map { Int($0) },
            missesBeforeBreak: try container.optionalInteger("missesBeforeBreak", .attemptCount).map { Int($0) },
            routing: try container.optional("routing"),
            inactivityMs: try container.optionalInteger("inactivityMs", .duration),
            closureText: try container.optionalUserText("closureText"),
            warningMs: try container.optionalInteger("warningMs", .duration),
            warningText: try container.optionalUserText("warningText")
        )
        if let inactivityMs, let warningMs, inactivityMs > 0, warningMs > 0, warningMs >= inactivityMs {
            throw container.violation("warningMs", "must be less than inactivityMs")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: FieldKey.self)
        try container.encodeOptional(ringMs, forKey: "ringMs")
        try container.encodeOptional(countdownEveryMs, forKey: "countdownEveryMs")
        try container.encodeOptional(autoAccept, forKey: "autoAccept")
        try container.encodeOptional(maxOfferAttempts, forKey: "maxOfferAttempts")
        try container.encodeOptional(missesBeforeBreak, forKey: "missesBeforeBreak")
        try container.encodeOptional(routing, forKey: "routing")
        try container.encodeOptional(inactivityMs, forKey: "inactivityMs")
        try container.encodeOptional(closureText, forKey: "closureText")
        try container.encodeOptional(warningMs, forKey: "warningMs")
        try container.encodeOptional(warningText, forKey: "warningText")
    }
}

/// The fields of `agent.upsert`: `agent`, `groups`, `capacity` (1...1000), `autoAccept` (absent or `null`: desk default).
extension AgentProfile: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: FieldKey.self)
        self.init(
            agent: try container.required("agent"),
            groups: try container.required("groups"),
            capacity: Int(try container.integer("capacity", .capacity)),
            autoAccept: try container.optional("autoAccept")
        )
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: FieldKey.self)
        try container.encode(agent, forKey: "agent")
        try container.encode(groups, forKey: "groups")
        try container.encode(capacity, forKey: "capacity")
        try container.encodeOptional(autoAccept, forKey: "autoAccept")
    }
}

/// The fields of `conversation.requested`. `priority` defaults to 0 and lies within 32-bit integers;
/// `attributes` must be an object nested at most `JSONValue.maxAttributeDepth` deep.
extension ConversationRequest: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: FieldKey.self)
        let attributes = try container.optional("attributes", as: JSONValue.self)
        switch attributes {
        case nil, .object: break
        case .null, .bool, .number, .string, .array: throw container.violation("attributes", "must be an object")
        }
        if let attributes, attributes.depth > JSONValue.maxAttributeDepth {
            throw container.violation("attributes", "must nest at most \(JSONValue.maxAttributeDepth) levels deep")
        }
        self.init(
            conversation: try container.required("conversation"),
            user: try container.required("user"),
            group: try container.optional("group"),
            priority: Int(try container.optionalInteger("priority", .priority) ?? 0),
            preferredAgent: try container.optional("preferredAgent"),
            attributes: attributes
        )
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: FieldKey.self)
        try container.encode(conversation, forKey: "conversation")
        try container.encode(user, forKey: "user")
        try container.encodeOptional(group, forKey: "group")
        try container.encode(priority, forKey: "priority")
        try container.encodeOptional(preferredAgent, forKey: "preferredAgent")
        try container.encodeOptional(attributes, forKey: "attributes")
    }
}

/// The fields of `message.posted`.
extension PostedMessage: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: FieldKey.self)
        self.init(
            conversation: try container.required("conversation"),
            from: try container.required("from"),
            agent: try container.optional("agent"),
            sentAt: try container.required("sentAt")
        )
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: FieldKey.self)
        try container.encode(conversation, forKey: "conversation")
        try container.encode(from, forKey: "from")
        try container.encodeOptional(agent, forKey: "agent")
        try container.encode(sentAt, forKey: "sentAt")
    }
}

/// `{"toAgent": ...}` or `{"toGroup": ...}`, as in `session.transfer`.
extension TransferTarget: Codable {
    public init(from decoder: any Decoder) throws {
        guard let target = try Self.decodeIfPresent(from: decoder) else {
            let container = try decoder.container(keyedBy: FieldKey.self)
            throw container.missing("toAgent")
        }
        self = target
    }

    /// `nil` when neither `toAgent` nor `toGroup` is present; both present is an error.
    static func decodeIfPresent(from decoder: any Decoder) throws -> TransferTarget? {
        let container = try decoder.container(keyedBy: FieldKey.self)
        let agent = try container.optional("toAgent", as: AgentID.self)
        let group = try container.optional("toGroup", as: GroupID.self)
        switch (agent, group) {
        case (let agent?, nil): return .agent(agent)
        case (nil, let group?): return .group(group)
        case (nil, nil): return nil
        case (.some, .some): throw container.violation("toGroup", "must not be given together with toAgent")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: FieldKey.self)
        switch self {
        case .agent(let agent): try container.encode(agent, forKey: "toAgent")
        case .group(let group): try container.encode(group, forKey: "toGroup")
        }
    }
}

/// The fields of `command.rejected`.
extension CommandRejection: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: FieldKey.self)
        self.init(
            command: try container.required("command"),
            commandType: try container.required("commandType"),
            agent: try container.optional("agent"),
            conversation: try container.optional("conversation"),
            reason: try container.required("reason")
        )
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: FieldKey.self)
        try container.encode(command, forKey: "command")
        try container.encode(commandType, forKey: "commandType")
        try container.encodeOptional(agent, forKey: "agent")
        try container.encodeOptional(conversation, forKey: "conversation")
        try container.encode(reason, forKey: "reason")
    }
}

extension RingSummary: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: FieldKey.self)
        self.init(
            conversation: try container.required("conversation"),
            user: try container.required("user"),
            offer: try container.required("offer"),
            expiresAt: try container.required("expiresAt")
        )
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: FieldKey.self)
        try container.encode(conversation, forKey: "conversation")
        try container.encode(user, forKey: "user")
        try container.encode(offer, forKey: "offer")
        try container.encode(expiresAt, forKey: "expiresAt")
    }
}

extension SessionSummary: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: FieldKey.self)
        self.init(conversation: try container.required("conversation"), user: try container.required("user"))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: FieldKey.self)
        try container.encode(conversation, forKey: "conversation")
        try container.encode(user, forKey: "user")
    }
}

/// The fields of `agent.state` and of the workstation's `state`.
extension AgentState: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: FieldKey.self)
        self.init(
            agent: try container.required("agent"),
            status: try container.required("status"),
            rings: try container.required("rings"),
            sessions: try container.required("sessions")
        )
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: FieldKey.self)
        try container.encode(agent, forKey: "agent")
        try container.encode(status, forKey: "status")
        try container.encode(rings, forKey: "rings")
        try container.encode(sessions, forKey: "sessions")
    }
}
