import Foundation
import SwitchboardCommon

/// How a delivery from a shard queue enters a core.
public enum DecodedDelivery<Input: Sendable>: Sendable {
    /// A valid input: journaled and handled.
    case input(Input)
    /// Bad input, dead-lettered with `reason` (the precise contract error). When `answer` is set (an agent's
    /// invalid command), the delivery is journaled and `answer` is handled, so the agent hears of it.
    case rejected(reason: String, answer: Input?)
}

/// What the runtime does for one core effect.
public enum ShardAction: Hashable, Sendable {
    /// Publish to a contract exchange, confirmed.
    case publish(WireMessage)
    /// Publish a copy of the input that caused it to `switchboard.dead`, with `reason`.
    case deadLetter(reason: String)
    /// The shard's single next deadline.
    case wakeUp(at: Instant)
    /// The Router's per-desk sequence skipped; logged and counted.
    case routerGap(desk: DeskID, expected: UInt64, got: UInt64)
}

/// Ties one pure core to the runtime: how deliveries become inputs and effects become actions. The core
/// itself stays a pure value; the runtime owns it per shard, journals its inputs and runs its effects.
public protocol ShardCoreAdapter: Sendable {
    associatedtype Core: Codable & Sendable
    associatedtype Input: Sendable
    associatedtype Effect: Sendable
    associatedtype Limits: CoreLimits = NoCoreLimits

    static var service: ServiceName { get }
    static func makeCore() -> Core
    /// Decodes and validates a delivery (WireCodec, WireProperties). Pure: replay decodes the journaled
    /// delivery again and must get the same result.
    static func decode(_ delivery: JournalInput) -> DecodedDelivery<Input>
    /// The input for a timer firing.
    static var tick: Input { get }
    static func handle(_ input: Input, in core: inout Core, at now: Instant) -> [Effect]
    /// The deadline an effect sets, if it is a wake-up.
    static func deadline(of effect: Effect) -> Instant?
    /// The action for `effect`; `id` is the message id derived from the journal position.
    static func action(for effect: Effect, id: MessageID) throws(ContractError) -> ShardAction
    /// What the core remembers at most.
    static func limits(of core: Core) -> Limits
    /// Changes what the core remembers at most (only as a journaled `limits` entry is applied).
    static func changeLimits(of core: inout Core, to limits: Limits)
}

extension ShardCoreAdapter where Limits == NoCoreLimits {
    public static func limits(of core: Core) -> NoCoreLimits { NoCoreLimits() }
    public static func changeLimits(of core: inout Core, to limits: NoCoreLimits) {}
}

extension ShardCoreAdapter {
    /// The limits of a core started empty: what a service runs with unless configured otherwise.
    public static var defaultLimits: Limits { limits(of: makeCore()) }
}

/// The Router: `switchboard.in` commands and requests in, facts to `switchboard.events` out.
public enum RouterAdapter: ShardCoreAdapter {
    public static let service = ServiceName.router
    public static func makeCore() -> RouterCore { RouterCore() }
    public static let tick = RouterCore.Input.tick

    /// The inbound types a workstation gateway sends for one agent: those answered with `command.rejected`.
    public static let agentCommandTypes: Set<String> = [
        "agent.status", "offer.accept", "offer.decline", "session.end", "session.transfer", "agent.sync",
    ]

    /// The admission check for `ShardRuntimeConfiguration.admission`: an agent command (by its body's type,
    /// or its `type` property when the body has none) is refused unless its broker-validated `user_id` has a
    /// rule in `users` for its desk (the body's and the `desk` header's). Every other message is admitted.
    public static func admission(_ users: AgentCommandUsers) -> @Sendable (JournalInput) -> String? {
        { delivery in
            let salvaged = WireCodec.salvage(delivery.body)
            guard let type = salvaged.type ?? delivery.type, agentCommandTypes.contains(type) else { return nil }
            let header = delivery.deskHeader.flatMap { try? DeskID($0) }
            let desks = [salvaged.desk, header].compactMap { $0 }
            return users.refusal(user: delivery.userID, desks: desks)
        }
    }

    /// A refused delivery is dead-lettered without being decoded; a contract error is dead-lettered with its
    /// description. Either way, an agent command whose id, desk and agent can still be read is answered.
    public static func decode(_ delivery: JournalInput) -> DecodedDelivery<RouterCore.Input> {
        if let refusal = delivery.refusal {
            return .rejected(reason: refusal, answer: rejectedCommand(delivery, reason: .forbidden))
        }
        do throws(ContractError) {
            let message = try WireCodec.decodeInbound(delivery.body, properties: delivery.wireProperties, routingKey: delivery.routingKey)
            return .input(.message(message))
        } catch {
            return .rejected(reason: error.description, answer: rejectedCommand(delivery, reason: .invalid))
        }
    }

    public static func limits(of core: RouterCore) -> RouterCore.Limits { core.limits }

    public static func changeLimits(of core: inout RouterCore, to limits: RouterCore.Limits) {
        core.changeLimits(to: limits)
    }

    private static func rejectedCommand(_ delivery: JournalInput, reason: RejectionReason) -> RouterCore.Input? {
        let salvaged = WireCodec.salvage(delivery.body)
        guard let type = salvaged.type, agentCommandTypes.contains(type), let id = salvaged.id,
            let desk = salvaged.desk, let agent = salvaged.agent
        else {
            return nil
        }
        return .rejectedCommand(
            id: id, desk: desk, agent: agent, type: type, conversation: salvaged.conversation, reason: reason)
    }

    public static func handle(_ input: RouterCore.Input, in core: inout RouterCore, at now: Instant) -> [RouterCore.Effect] {
        core.handle(input, at: now)
    }

    public static func deadline(of effect: RouterCore.Effect) -> Instant? {
        switch effect {
        case .wakeUp(let at): at
        case .publish, .deadLetter: nil
        }
    }

    public static func action(for effect: RouterCore.Effect, id: MessageID) throws(ContractError) -> ShardAction {
        switch effect {
        case .publish(let event): .publish(try WireCodec.outgoing(event, id: id))
        case .deadLetter(let reason): .deadLetter(reason: reason)
        case .wakeUp(let at): .wakeUp(at: at)
        }
    }
}

/// The Notifier: Router facts from `switchboard.events` in, workstation events out.
public enum NotifierAdapter: ShardCoreAdapter {
    public static let service = ServiceName.notifier
    public static func makeCore() -> NotifierCore { NotifierCore() }
    public static let tick = NotifierCore.Input.tick

    public static func decode(_ delivery: JournalInput) -> DecodedDelivery<NotifierCore.Input> {
        do throws(ContractError) {
            let event = try WireCodec.decodeRouterEvent(delivery.body, properties: delivery.wireProperties, routingKey: delivery.routingKey)
            return .input(.routerEvent(event.message))
        } catch {
            return .rejected(reason: error.description, answer: nil)
        }
    }

    public static func handle(_ input: NotifierCore.Input, in core: inout NotifierCore, at now: Instant) -> [NotifierCore.Effect] {
        core.handle(input, at: now)
    }

    public static func deadline(of effect: NotifierCore.Effect) -> Instant? {
        switch effect {
        case .wakeUp(let at): at
        case .publish, .routerGap: nil
        }
    }

    public static func action(for effect: NotifierCore.Effect, id: MessageID) throws(ContractError) -> ShardAction {
        switch effect {
        case .publish(let event): .publish(try WireCodec.outgoing(event, id: id))
        case .routerGap(let desk, let expected, let got): .routerGap(desk: desk, expected: expected, got: got)
        case .wakeUp(let at): .wakeUp(at: at)
        }
    }
}

/// The Closer: `message.posted` from `switchboard.in` and Router facts in; closure messages to
/// `switchboard.outbound` and `conversation.ended` (by inactivity) to `switchboard.in` out.
public enum CloserAdapter: ShardCoreAdapter {
    public static let service = ServiceName.closer
    public static func makeCore() -> CloserCore { CloserCore() }
    public static let tick = CloserCore.Input.tick

    public static func decode(_ delivery: JournalInput) -> DecodedDelivery<CloserCore.Input> {
        do throws(ContractError) {
            switch delivery.exchange {
            case ContractExchange.events.rawValue:
                let event = try WireCodec.decodeRouterEvent(delivery.body, properties: delivery.wireProperties, routingKey: delivery.routingKey)
                return .input(.routerEvent(event.message))
            default:
                let message = try WireCodec.decodeInbound(delivery.body, properties: delivery.wireProperties, routingKey: delivery.routingKey)
                return .input(.message(message))
            }
        } catch {
            return .rejected(reason: error.description, answer: nil)
        }
    }

    public static func handle(_ input: CloserCore.Input, in core: inout CloserCore, at now: Instant) -> [CloserCore.Effect] {
        core.handle(input, at: now)
    }

    public static func limits(of core: CloserCore) -> CloserCore.Limits { core.limits }

    public static func changeLimits(of core: inout CloserCore, to limits: CloserCore.Limits) {
        core.changeLimits(to: limits)
    }

    public static func deadline(of effect: CloserCore.Effect) -> Instant? {
        switch effect {
        case .wakeUp(let at): at
        case .publish, .send, .deadLetter: nil
        }
    }

    /// `.send` keeps the core's own message id: the same for every retry, so the Router drops duplicates
    /// whichever journal position produced them.
    public static func action(for effect: CloserCore.Effect, id: MessageID) throws(ContractError) -> ShardAction {
        switch effect {
        case .publish(let message): .publish(try WireCodec.outgoing(message, id: id))
        case .send(let message): .publish(try WireCodec.outgoing(message))
        case .deadLetter(let reason): .deadLetter(reason: reason)
        case .wakeUp(let at): .wakeUp(at: at)
        }
    }
}
