/// Publisher-confirm bookkeeping for one channel in confirm mode: which delivery tags are in flight,
/// and what the broker's basic.ack / basic.nack / basic.return said about each.
///
/// Tags are consecutive from 1. The window bounds the span of tags from the oldest unsettled one to
/// the next, so the slots form a ring of `window` entries and tracking allocates nothing per message.
struct ConfirmTracker<Entry> {
    enum Outcome: Equatable {
        case confirmed
        case nacked
        /// The message was returned as unroutable (mandatory) before the broker confirmed it.
        case returned(code: UInt16, text: String)
    }

    private struct Slot {
        var entry: Entry
        var returned: (code: UInt16, text: String)?
    }

    let window: Int
    private var slots: [Slot?]
    private(set) var oldestTag: UInt64 = 1
    private(set) var nextTag: UInt64 = 1
    private(set) var inFlightCount = 0

    init(window: Int) {
        precondition(window > 0, "a confirm window holds at least one message")
        self.window = window
        slots = Array(repeating: nil, count: window)
    }

    var hasRoom: Bool { nextTag - oldestTag < UInt64(window) }
    var isEmpty: Bool { inFlightCount == 0 }

    private func index(of tag: UInt64) -> Int { Int(tag % UInt64(window)) }

    /// Records a message about to be published and returns its delivery tag.
    mutating func track(_ entry: Entry) -> UInt64 {
        precondition(hasRoom, "publishing beyond the confirm window")
        let tag = nextTag
        slots[index(of: tag)] = Slot(entry: entry)
        nextTag += 1
        inFlightCount += 1
        return tag
    }

    /// Marks the oldest in-flight message that `matches` and was not returned yet. The broker sends
    /// basic.return before the ack of the same message, and a return names no tag, so the caller
    /// matches on what the return carries (exchange, routing key, message id, body).
    mutating func markReturned(code: UInt16, text: String, where matches: (Entry) -> Bool) -> Bool {
        var tag = oldestTag
        while tag < nextTag {
            let slotIndex = index(of: tag)
            if let slot = slots[slotIndex], slot.returned == nil, matches(slot.entry) {
                slots[slotIndex]?.returned = (code, text)
                return true
            }
            tag += 1
        }
        return false
    }

    /// Applies basic.ack (`acknowledged`) or basic.nack for `tag`, or for every tag up to it when
    /// `multiple`. Tags already settled or never sent are ignored.
    mutating func settle(tag: UInt64, multiple: Bool, acknowledged: Bool, _ report: (Entry, Outcome) -> Void) {
        guard tag < nextTag, tag >= oldestTag else { return }
        let first = multiple ? oldestTag : tag
        var current = first
        while current <= tag {
            let slotIndex = index(of: current)
            if let slot = slots[slotIndex] {
                slots[slotIndex] = nil
                inFlightCount -= 1
                if !acknowledged {
                    report(slot.entry, .nacked)
                } else if let returned = slot.returned {
                    report(slot.entry, .returned(code: returned.code, text: returned.text))
                } else {
                    report(slot.entry, .confirmed)
                }
            }
            current += 1
        }
        while oldestTag < nextTag, slots[index(of: oldestTag)] == nil {
            oldestTag += 1
        }
    }

    /// Hands back every message still in flight, oldest first, and starts again at tag 1, as a new
    /// channel in confirm mode does.
    mutating func removeAll(_ report: (Entry) -> Void) {
        var tag = oldestTag
        while tag < nextTag {
            if let slot = slots[index(of: tag)] { report(slot.entry) }
            slots[index(of: tag)] = nil
            tag += 1
        }
        oldestTag = 1
        nextTag = 1
        inFlightCount = 0
    }
}
