import CRabbitMQ
import Glibc

/// basic.publish frames for a burst of messages, encoded into one buffer and written with as few
/// send(2) calls as the socket allows. librabbitmq's `amqp_basic_publish` sends the method, header and
/// body frames of every message with a system call each, and each of those pushes a TCP segment the
/// broker must read; one write per burst costs a fraction of that on both ends.
///
/// Only for plain TCP: the frames go straight to the socket, which librabbitmq leaves with nothing
/// half-written between its calls. Used only on the I/O thread.
final class PublishFrames {
    /// Frame type, channel and payload size before the payload; the frame-end octet after it.
    static let frameOverhead = 8

    private var storage: UnsafeMutableRawPointer
    private var capacity: Int
    private(set) var count = 0

    init(initialCapacity: Int = 64 * 1024) {
        capacity = initialCapacity
        storage = .allocate(byteCount: initialCapacity, alignment: 8)
    }

    deinit { storage.deallocate() }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: storage, count: count) }

    /// AMQP short strings: a longer exchange name or routing key cannot be encoded, over plain TCP or TLS.
    static func checkNames(of message: OutgoingMessage) throws(AMQPError) {
        guard message.exchange.utf8.count <= 255, message.routingKey.utf8.count <= 255 else {
            throw .protocolError("an exchange name or routing key longer than 255 bytes cannot be published")
        }
    }

    /// Appends the frames of one message. `frameMax` is the negotiated frame size (header and frame-end
    /// included). On failure nothing is appended and the message must not be counted as published.
    func append(
        _ message: OutgoingMessage, properties: inout amqp_basic_properties_t, channel: UInt16, frameMax: Int
    ) throws(AMQPError) {
        try Self.checkNames(of: message)
        let exchange = message.exchange.utf8
        let routingKey = message.routingKey.utf8
        let start = count
        let methodSize = 4 + 2 + 1 + exchange.count + 1 + routingKey.count + 1
        reserve(Self.frameOverhead + methodSize)
        beginFrame(type: AMQP_FRAME_METHOD, channel: channel, size: methodSize)
        putUInt16(UInt16(AMQP_BASIC_CLASS))
        putUInt16(UInt16(AMQP_BASIC_PUBLISH_METHOD & 0xFFFF))
        putUInt16(0)
        putShortString(exchange)
        putShortString(routingKey)
        put(message.mandatory ? 1 : 0)
        put(UInt8(AMQP_FRAME_END))

        // The header's payload is bounded by the frame size, so that much room always suffices.
        let payloadMax = frameMax - Self.frameOverhead
        reserve(frameMax)
        let headerStart = count
        count += 7
        putUInt16(UInt16(AMQP_BASIC_CLASS))
        putUInt16(0)
        putUInt64(UInt64(message.body.count))
        let propertiesSize = withUnsafeMutablePointer(to: &properties) { decoded in
            amqp_encode_properties(
                UInt16(AMQP_BASIC_CLASS), decoded,
                amqp_bytes_t(len: payloadMax - 12, bytes: storage + count))
        }
        guard propertiesSize >= 0 else {
            count = start
            throw .protocolError("the message properties do not fit one frame: \(CDecode.status(propertiesSize))")
        }
        count += Int(propertiesSize)
        let headerSize = count - headerStart - 7
        count = headerStart
        beginFrame(type: AMQP_FRAME_HEADER, channel: channel, size: headerSize)
        count += headerSize
        put(UInt8(AMQP_FRAME_END))

        message.body.withUnsafeBytes { body in
            var offset = 0
            while offset < body.count {
                let chunk = min(payloadMax, body.count - offset)
                reserve(Self.frameOverhead + chunk)
                beginFrame(type: AMQP_FRAME_BODY, channel: channel, size: chunk)
                (storage + count).copyMemory(from: body.baseAddress! + offset, byteCount: chunk)
                count += chunk
                put(UInt8(AMQP_FRAME_END))
                offset += chunk
            }
        }
    }

    /// Writes everything appended to `descriptor` (non-blocking, as librabbitmq leaves it), waiting for
    /// room when the socket is full but no longer than `timeout`; the buffer is empty afterwards either
    /// way. Returns why the write failed, or nil.
    func write(to descriptor: Int32, timeout: Duration) -> String? {
        defer { count = 0 }
        let deadline = ContinuousClock.now + timeout
        var written = 0
        while written < count {
            let sent = send(descriptor, storage + written, count - written, Int32(MSG_NOSIGNAL))
            if sent > 0 {
                written += sent
                continue
            }
            let error = errno
            guard sent < 0, error == EAGAIN || error == EWOULDBLOCK || error == EINTR else {
                return sent == 0 ? "the socket accepted nothing" : "sending publishes failed: \(String(cString: strerror(error)))"
            }
            if error == EINTR { continue }
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { return "the broker read nothing for \(timeout)" }
            var descriptors = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
            let (seconds, attoseconds) = remaining.components
            _ = poll(&descriptors, 1, Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1))
        }
        return nil
    }

    private func reserve(_ additional: Int) {
        guard count + additional > capacity else { return }
        let newCapacity = max(capacity * 2, count + additional)
        let grown = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 8)
        grown.copyMemory(from: storage, byteCount: count)
        storage.deallocate()
        storage = grown
        capacity = newCapacity
    }

    private func beginFrame(type: Int32, channel: UInt16, size: Int) {
        put(UInt8(type))
        putUInt16(channel)
        putUInt32(UInt32(size))
    }

    private func put(_ byte: UInt8) {
        storage.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    private func putUInt16(_ value: UInt16) {
        storage.storeBytes(of: value.bigEndian, toByteOffset: count, as: UInt16.self)
        count += 2
    }

    private func putUInt32(_ value: UInt32) {
        storage.storeBytes(of: value.bigEndian, toByteOffset: count, as: UInt32.self)
        count += 4
    }

    private func putUInt64(_ value: UInt64) {
        storage.storeBytes(of: value.bigEndian, toByteOffset: count, as: UInt64.self)
        count += 8
    }

    private func putShortString(_ utf8: String.UTF8View) {
        put(UInt8(utf8.count))
        for byte in utf8 { put(byte) }
    }
}
