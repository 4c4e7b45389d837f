import SwitchboardAMQP
import SwitchboardTestSupport
import Testing

struct TimedOut: Error, CustomStringConvertible {
    var description: String
}

/// Takes deliveries from `consumer` until `count` arrived, acknowledging each when `acknowledge`,
/// and fails after `timeout` with how many came.
func receive(
    _ count: Int, from consumer: AMQPConsumer, acknowledge: Bool = true, timeout: Duration = .seconds(60)
) async throws -> [AMQPDelivery] {
    let received = try await within(timeout) {
        var received: [AMQPDelivery] = []
        received.reserveCapacity(count)
        for try await delivery in consumer {
            if acknowledge { try delivery.ack() }
            received.append(delivery)
            if received.count == count { break }
        }
        return received
    }
    guard let received else {
        throw TimedOut(description: "fewer than \(count) deliveries within \(timeout)")
    }
    return received
}

/// Message ids travel as decimal strings in `message_id`.
func messageNumber(_ delivery: AMQPDelivery) -> Int? {
    delivery.properties.messageID.flatMap(Int.init)
}

func persistentProperties(number: Int) -> AMQPProperties {
    AMQPProperties(contentType: "application/octet-stream", deliveryMode: .persistent, messageID: "\(number)")
}

/// A 300-byte body that names its message, as the throughput numbers assume.
func body(number: Int, size: Int = 300) -> [UInt8] {
    var bytes = Array("message \(number) ".utf8)
    bytes += Array(repeating: UInt8(ascii: "x"), count: max(0, size - bytes.count))
    return bytes
}
