import Foundation
import SwitchboardCommon
import SwitchboardRuntime

/// Readable lines for `switchboard journal replay`: each step a shard took, and under an input or a timer
/// firing, what the core did with it (`→` and the id the effect was published under).
public enum JournalLine {
    /// The lines of one step. With `desk`, only what concerns that desk: an input of that desk with all it
    /// did, a timer firing with that desk's effects only (none: no lines), and the shard-wide steps that
    /// explain a history (a writer's term, a restore, an entry not applied, a change of limits), but not its
    /// snapshots.
    public static func describe(_ step: JournalStep, desk: DeskID? = nil) -> [String] {
        switch step {
        case .writerTerm(let epoch, let at):
            return ["\(at.rfc3339) writer term \(epoch) begins: an instance took the shard"]
        case .snapshot(let seq, let asOf, let at):
            return desk == nil ? ["\(at.rfc3339) #\(seq) snapshot of the state as of #\(asOf)"] : []
        case .restored(let asOf, nil):
            return ["the journal's start was cut off by retention: replay starts from the snapshot as of #\(asOf)"]
        case .restored(let asOf, let failure?):
            return ["the snapshot as of #\(asOf) cannot be decoded (\(failure)): what follows starts from the state before it"]
        case .superseded(let seq, let epoch, let at):
            let entry = seq.map { "#\($0)" } ?? "an entry"
            return ["\(at.rfc3339) \(entry) of writer term \(epoch) not applied: a later term had begun"]
        case .limits(let seq, let limits, let at):
            return ["\(at.rfc3339) #\(seq) memory limits from here on: \(ListedLimits(limits))"]
        case .applied(let applied):
            return describe(applied, desk: desk)
        }
    }

    private static func describe(_ applied: AppliedStep, desk: DeskID?) -> [String] {
        let inputDesk = applied.input?.deskHeader
        let actions = applied.actions.compactMap { effect -> String? in
            guard let line = describe(effect, input: applied.input) else { return nil }
            if let desk, inputDesk != desk.rawValue, self.desk(of: effect, input: applied.input) != desk.rawValue {
                return nil
            }
            return "    → \(line)"
        }
        if let desk, inputDesk != desk.rawValue, actions.isEmpty { return [] }
        var head = "\(applied.at.rfc3339) #\(applied.seq) "
        if let input = applied.input {
            head += "\(input.type ?? input.routingKey) from \(input.exchange) ("
            head += [
                input.messageID.map { "id \($0)" }, input.deskHeader.map { "desk \($0)" }, input.userID.map { "user \($0)" },
            ].compactMap { $0 }.joined(separator: ", ")
            head += ")"
            if let rejection = applied.rejection { head += " rejected: \(rejection)" }
        } else {
            head += "timer"
        }
        return [head] + actions
    }

    /// `nil` for what changes nothing outside the shard (setting its timer).
    private static func describe(_ effect: EffectAction, input: JournalInput?) -> String? {
        let action: ShardAction
        switch effect.action {
        case .success(let success): action = success
        case .failure(let error): return "\(effect.id) cannot be encoded and was not published: \(error)"
        }
        switch action {
        case .publish(let message):
            // The id it went out with: the effect's own where the core gives one (the Closer's conversation.ended).
            let id = message.properties.messageID ?? effect.id.rawValue
            if message.exchange == .events, let event = try? WireCodec.decodeRouterEvent(message.body) {
                return "\(id) \(event.message.desk) #\(event.message.seq) \(EventLine.describe(event.message.body))"
            }
            let body = String(decoding: message.body, as: UTF8.self)
            return "\(id) to \(message.exchange.rawValue) \(message.routingKey) \(body)"
        case .deadLetter(let reason):
            return input == nil ? nil : "dead-lettered: \(reason)"
        case .routerGap(let desk, let expected, let got):
            return "Router events of desk \(desk) skipped: expected #\(expected), got #\(got)"
        case .wakeUp:
            return nil
        }
    }

    private static func desk(of effect: EffectAction, input: JournalInput?) -> String? {
        switch effect.action {
        case .success(.publish(let message)): message.properties.deskHeader
        case .success(.deadLetter): input?.deskHeader
        case .success(.routerGap(let desk, _, _)): desk.rawValue
        case .success(.wakeUp), .failure: nil
        }
    }
}
