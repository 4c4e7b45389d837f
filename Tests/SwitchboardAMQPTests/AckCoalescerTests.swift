import Testing

@testable import SwitchboardAMQP

struct AckCoalescerTests {
    private func frames(_ coalescer: inout AckCoalescer, _ settlements: [(UInt64, Settlement)], flush: Bool = true) -> [AckCoalescer.Frame] {
        var sent: [AckCoalescer.Frame] = []
        for (tag, settlement) in settlements { coalescer.settle(tag, settlement) { sent.append($0) } }
        if flush { coalescer.flush { sent.append($0) } }
        return sent
    }

    @Test func inOrderAcksBecomeOneMultipleAck() {
        var coalescer = AckCoalescer()
        let sent = frames(&coalescer, (1...5).map { ($0, .ack(multiple: false)) })
        #expect(sent == [.ack(deliveryTag: 5, multiple: true)])
        #expect(coalescer.lowestUnsettled == 6)
        #expect(frames(&coalescer, []).isEmpty)
    }

    @Test func anAckAheadOfAnUnsettledTagGoesOutAloneAndIsCoveredLater() {
        var coalescer = AckCoalescer()
        #expect(frames(&coalescer, [(2, .ack(multiple: false)), (3, .ack(multiple: false))])
            == [.ack(deliveryTag: 2, multiple: false), .ack(deliveryTag: 3, multiple: false)])
        // Tag 1 completes the run 1...3, but 2 and 3 are no longer outstanding: the ack names 1, the highest
        // tag held back (a multiple ack naming 3 would be refused as an unknown tag).
        #expect(frames(&coalescer, [(1, .ack(multiple: false))]) == [.ack(deliveryTag: 1, multiple: true)])
        #expect(coalescer.lowestUnsettled == 4)
        // The run goes on from 4.
        #expect(frames(&coalescer, [(4, .ack(multiple: false)), (5, .ack(multiple: false))]) == [.ack(deliveryTag: 5, multiple: true)])
    }

    @Test func aHeldAckNeverNamesATagSettledByAFrameOfItsOwn() {
        var coalescer = AckCoalescer()
        // 1 held; 3 rejected on its own; 2 held and completes the run to 3.
        let sent = frames(&coalescer, [(1, .ack(multiple: false)), (3, .reject(requeue: true)), (2, .ack(multiple: false))])
        #expect(sent == [
            .ack(deliveryTag: 1, multiple: true),
            .reject(deliveryTag: 3, requeue: true),
            .ack(deliveryTag: 2, multiple: true),
        ])
        #expect(coalescer.lowestUnsettled == 4)
    }

    @Test func aNackSendsTheHeldAckFirst() {
        var coalescer = AckCoalescer()
        let sent = frames(&coalescer, [(1, .ack(multiple: false)), (2, .nack(multiple: false, requeue: true)), (3, .ack(multiple: false))])
        #expect(sent == [
            .ack(deliveryTag: 1, multiple: true),
            .nack(deliveryTag: 2, multiple: false, requeue: true),
            .ack(deliveryTag: 3, multiple: true),
        ])
    }

    @Test func rejectsAndCallerMultipleAcksPassThrough() {
        var coalescer = AckCoalescer()
        let sent = frames(&coalescer, [(1, .reject(requeue: false)), (4, .ack(multiple: true)), (5, .ack(multiple: false))])
        #expect(sent == [
            .reject(deliveryTag: 1, requeue: false),
            .ack(deliveryTag: 4, multiple: true),
            .ack(deliveryTag: 5, multiple: true),
        ])
    }

    @Test func nothingIsSentBeforeTheFlush() {
        var coalescer = AckCoalescer()
        #expect(frames(&coalescer, [(1, .ack(multiple: false)), (2, .ack(multiple: false))], flush: false).isEmpty)
    }
}
