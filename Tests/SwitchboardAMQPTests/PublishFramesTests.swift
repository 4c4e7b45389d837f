import Testing

@testable import SwitchboardAMQP

struct PublishFramesTests {
    private func encode(_ message: OutgoingMessage, channel: UInt16 = 5, frameMax: Int = 4096) throws(AMQPError) -> [UInt8] {
        let frames = PublishFrames(initialCapacity: 16)
        let arena = CArena()
        var properties = arena.properties(message.properties)
        try frames.append(message, properties: &properties, channel: channel, frameMax: frameMax)
        return Array(frames.bytes)
    }

    /// Splits AMQP frames into (type, channel, payload), checking each one's size and frame-end octet.
    private func frames(in bytes: [UInt8]) -> [(type: UInt8, channel: UInt16, payload: [UInt8])] {
        var result: [(UInt8, UInt16, [UInt8])] = []
        var offset = 0
        while offset < bytes.count {
            let channel = UInt16(bytes[offset + 1]) << 8 | UInt16(bytes[offset + 2])
            let size = bytes[(offset + 3)..<(offset + 7)].reduce(0) { $0 << 8 | Int($1) }
            #expect(bytes[offset + 7 + size] == 0xCE)
            result.append((bytes[offset], channel, Array(bytes[(offset + 7)..<(offset + 7 + size)])))
            offset += 8 + size
        }
        return result
    }

    @Test func aPublishIsAMethodAHeaderAndABodyFrame() throws {
        let body: [UInt8] = Array(1...10)
        let message = OutgoingMessage(
            body: body, exchange: "ex", routingKey: "rk", properties: AMQPProperties(deliveryMode: .persistent), mandatory: true)
        let decoded = frames(in: try encode(message))
        #expect(decoded.map(\.type) == [1, 2, 3])
        #expect(decoded.map(\.channel) == [5, 5, 5])
        // basic.publish (60, 40), ticket 0, exchange "ex", routing key "rk", mandatory bit.
        #expect(decoded[0].payload == [0, 60, 0, 40, 0, 0, 2, 101, 120, 2, 114, 107, 1])
        // Class 60, weight 0, body size 10, flags with only delivery-mode (bit 12), persistent.
        #expect(decoded[1].payload == [0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10, 0x10, 0x00, 2])
        #expect(decoded[2].payload == body)
    }

    @Test func aBodyLargerThanAFrameIsSplitAtTheFrameSize() throws {
        let body = (0..<10_000).map { UInt8(truncatingIfNeeded: $0) }
        let decoded = frames(in: try encode(OutgoingMessage(body: body, exchange: "", routingKey: "q"), frameMax: 4096))
        #expect(decoded.map(\.type) == [1, 2, 3, 3, 3])
        #expect(decoded.dropFirst(2).map(\.payload.count) == [4088, 4088, 1824])
        #expect(decoded.dropFirst(2).flatMap(\.payload) == body)
    }

    @Test func anEmptyBodyHasNoBodyFrame() throws {
        let decoded = frames(in: try encode(OutgoingMessage(body: [], exchange: "", routingKey: "q")))
        #expect(decoded.map(\.type) == [1, 2])
    }

    @Test func aRoutingKeyTooLongForAShortStringIsRefusedAndNothingIsAppended() {
        let frames = PublishFrames()
        let arena = CArena()
        var properties = arena.properties(AMQPProperties())
        let message = OutgoingMessage(body: [1], exchange: "", routingKey: String(repeating: "k", count: 256))
        #expect(throws: AMQPError.self) {
            try frames.append(message, properties: &properties, channel: 2, frameMax: 4096)
        }
        #expect(frames.count == 0)
    }
}
