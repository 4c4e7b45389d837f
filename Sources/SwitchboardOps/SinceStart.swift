import SwitchboardCommon
import SwitchboardRuntime

/// Replaying a journal for what happened from a time on, without reading it from its first record: the read
/// begins at a point before that time, and the replay starts, as a service does whose journal was cut off by
/// retention, from the first snapshot it meets (`JournalStep.restored`). That start is good when the state
/// it restores is older than the time asked for, so that nothing from then on is hidden inside it; if not,
/// the read must begin earlier. `SinceStart` holds back the steps of such a read until it can tell.
public struct SinceStart: Sendable {
    public enum Verdict: Sendable, Equatable {
        case undecided
        /// Every step from `since` on follows: print them.
        case good
        /// The read began too late, or at a snapshot that cannot be decoded: begin earlier.
        case tooLate
    }

    public let since: Instant
    public private(set) var verdict = Verdict.undecided
    /// The seq the restored snapshot is as of; `nil` when the read reached the journal's first entry.
    public private(set) var restoredAsOf: UInt64?
    private var held: [JournalStep] = []

    public init(since: Instant) {
        self.since = since
    }

    /// Takes the steps of one record, in order, and returns those that may be shown now: none before the
    /// verdict is `good`, then the held ones and all that follow. The restore itself is kept back
    /// (`restoredAsOf` says where the replay started).
    public mutating func take(_ steps: [JournalStep]) -> [JournalStep] {
        switch verdict {
        case .good: return steps
        case .tooLate: return []
        case .undecided: break
        }
        for (index, step) in steps.enumerated() {
            switch step {
            case .restored(let asOf, nil) where restoredAsOf == nil:
                restoredAsOf = asOf
                continue
            case .restored:
                return decide(.tooLate)
            case .applied(let applied) where applied.seq == 1 && restoredAsOf == nil:
                // The journal's first entry: the read has all of it.
                held.append(step)
                return decide(.good) + steps[(index + 1)...]
            case .writerTerm where restoredAsOf == nil:
                // A writer's term says nothing yet: its entries wait for a snapshot, or start the journal.
                held.append(step)
                continue
            default:
                held.append(step)
                guard let at = step.at else { continue }
                if at >= since { return decide(.tooLate) }
                if restoredAsOf != nil { return decide(.good) + steps[(index + 1)...] }
            }
        }
        return []
    }

    private mutating func decide(_ verdict: Verdict) -> [JournalStep] {
        self.verdict = verdict
        defer { held = [] }
        return verdict == .good ? held : []
    }
}
