import SwitchboardCommon

/// What the demo counted, for the summary printed on Ctrl-C.
struct DemoTally: Sendable, Equatable {
    var requested = 0
    var rings = 0
    var expiries = 0
    var assigned = 0
    var autoAssigned = 0
    var ended = 0
    /// Conversations still open at Ctrl-C, which the demo ended as it exited, and those it could not end.
    var endedOnExit = 0
    var notEndedOnExit = 0
    var lateAcceptsRejected = 0
    var userReplies = 0
    var warnings = 0
    var closures = 0

    mutating func count(_ event: RouterEventBody) {
        switch event {
        case .offerMade: rings += 1
        case .offerExpired: expiries += 1
        case .conversationAssigned(_, _, _, _, let mode):
            assigned += 1
            switch mode {
            case .autoAccepted: autoAssigned += 1
            case .accepted, .transferred: break
            }
        case .conversationEnded: ended += 1
        case .commandRejected(let rejection):
            if rejection.reason == .offerExpired { lateAcceptsRejected += 1 }
        case .deskConfigured, .agentChanged, .conversationQueued, .offerDeclined, .offerWithdrawn, .agentState:
            break
        }
    }

    mutating func count(_ message: OutboundBody) {
        switch message {
        case .closureMessage: closures += 1
        case .inactivityWarning: warnings += 1
        }
    }

    var summary: String {
        """
        conversations requested \(requested), assigned \(assigned) (\(autoAssigned) by automatic service), ended \(ended)\
        \(endedOnExit > 0 ? " (and \(endedOnExit) still open, ended on exit)" : "")\
        \(notEndedOnExit > 0 ? " (\(notEndedOnExit) still open and not ended: the next run ends them)" : "")
        rings \(rings), expiries \(expiries), late accepts rejected \(lateAcceptsRejected)
        user replies \(userReplies), inactivity warnings \(warnings), closure messages \(closures)
        """
    }
}

/// A small seeded generator (SplitMix64), so `--seed` replays the same choices.
struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
