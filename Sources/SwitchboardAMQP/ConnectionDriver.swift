import CRabbitMQ
import DequeModule
import Glibc
import Logging
import Synchronization

/// The I/O thread's side of a connection: the only code that touches the librabbitmq connection.
///
/// One loop: take the commands callers queued, send what can be sent (publishes in batches, up to
/// each confirm window), drain every frame that has arrived without blocking, expire waits that ran
/// too long, and sleep in poll(2) on the socket and the wake-up descriptor only when nothing happened.
/// Heartbeats are sent and checked by librabbitmq inside the frame calls, so the sleep is bounded
/// by a fraction of the heartbeat interval.
///
/// It is confined to its thread; `@unchecked Sendable` only lets the thread's closure take it.
final class ConnectionDriver: @unchecked Sendable {
    private enum Link {
        case connected(amqp_connection_state_t)
        case disconnected(failedAttempts: Int, nextAttempt: ContinuousClock.Instant, since: ContinuousClock.Instant, lastError: String)
        case closed
    }

    /// Failure of a synchronous broker call: either only its channel is gone, or the whole connection.
    private enum CallFailure: Error {
        case channel(AMQPError)
        case connection(AMQPError)
        /// The whole connection is gone, closed by the broker in answer to this very call (the close names the
        /// call's method: an unknown exchange type, say). Made again, the call would cost the next connection too.
        case refused(AMQPError)

        var error: AMQPError {
            switch self {
            case .channel(let error), .connection(let error), .refused(let error): error
            }
        }
    }

    /// A batch publish's caller, resumed once every message of the batch is settled.
    private final class PublishBatch {
        var outcome: BatchOutcome
        let continuation: UnsafeContinuation<Void, any Error>

        init(count: Int, continuation: UnsafeContinuation<Void, any Error>) {
            outcome = BatchOutcome(count: count)
            self.continuation = continuation
        }
    }

    /// Who learns what became of one published message.
    private enum PublishCompletion {
        case single(UnsafeContinuation<Void, any Error>)
        case batch(PublishBatch, index: Int)

        func finish(_ result: Result<Void, AMQPError>) {
            switch self {
            case .single(let continuation):
                continuation.resume(with: result.mapError { $0 })
            case .batch(let batch, let index):
                if let batchResult = batch.outcome.settle(index, result) {
                    batch.continuation.resume(with: batchResult.mapError { $0 })
                }
            }
        }
    }

    private struct WaitingPublish {
        var message: OutgoingMessage
        var enqueuedAt: ContinuousClock.Instant
        var completion: PublishCompletion
    }

    private struct InFlightPublish {
        var message: OutgoingMessage
        var completion: PublishCompletion
    }

    /// A message whose method frame arrived, waiting for its header and body frames.
    private struct IncomingContent {
        enum Kind {
            case delivery(deliveryTag: UInt64, redelivered: Bool)
            case returned(code: UInt16, text: String)
        }

        var kind: Kind
        var exchange: String
        var routingKey: String
        var properties = AMQPProperties()
        var expectedSize = 0
        var body: [UInt8] = []
        var headerSeen = false
    }

    private final class PublisherChannel {
        var tracker: ConfirmTracker<InFlightPublish>
        var waiting = Deque<WaitingPublish>()
        var isOpen = false
        var incoming: IncomingContent?

        init(window: Int) { tracker = ConfirmTracker(window: window) }
    }

    /// A stream record as delivered: its `x-stream-offset` header and its body.
    private struct StreamRecord {
        let offset: Int64
        let body: [UInt8]
    }

    private final class ConsumerChannel {
        let spec: ConsumerSpec
        let stream: DeliveryStream.Continuation
        /// Its `ConsumerKey.id`.
        let id: UInt64
        var consumerTag: String?
        /// For streams: the last record delivered, where a subscription resumes after a reconnect.
        var lastStreamRecord: StreamRecord?
        /// For a stream subscription resumed at `lastStreamRecord`: that record must come first, by the
        /// deadline, as proof that this is still the stream it read. It is settled here, not handed on again.
        var resumeCheck: (record: StreamRecord, deadline: ContinuousClock.Instant)?
        var incoming: IncomingContent?
        var acks = AckCoalescer()
        /// Numbers each basic.consume of this driver, so settles reach only the subscription they came from.
        var subscription: UInt64 = 0

        /// Deliveries read in this turn of the loop, handed to the consumer together: one wake-up of
        /// its task per burst rather than per message.
        private var burst: [AMQPDelivery] = []

        init(spec: ConsumerSpec, stream: DeliveryStream.Continuation, id: UInt64) {
            self.spec = spec
            self.stream = stream
            self.id = id
        }

        func deliver(_ delivery: AMQPDelivery) { burst.append(delivery) }

        func handOverBurst() {
            guard !burst.isEmpty else { return }
            stream.yield(burst)
            burst = []
        }

        /// Ends the sequence after the deliveries already read.
        func finish(throwing error: AMQPError? = nil) {
            handOverBurst()
            stream.finish(throwing: error)
        }

        var subscribeArguments: AMQPTable {
            var arguments = spec.arguments
            if let lastStreamRecord, arguments[StreamOffset.name] != nil {
                arguments[StreamOffset.name] = .int(lastStreamRecord.offset)
            }
            return arguments
        }
    }

    private struct PendingDeclaration {
        var topology: Topology
        var enqueuedAt: ContinuousClock.Instant
        var continuation: CheckedContinuation<Void, any Error>
    }

    private static let controlChannel: UInt16 = 1
    private static let frameMax: Int32 = 131_072
    private static let framesPerTurn = 4096

    private let configuration: AMQPConfiguration
    private let logger: Logger
    private let shared: ConnectionShared
    private let arena = CArena()
    private let publishFrames = PublishFrames()
    /// A burst of publishes is written once it holds this much, so large bodies do not pile up in memory.
    private static let publishBurstBytes = 256 * 1024

    private var link: Link = .closed
    private var isBlocked = false
    private var blockedSince: ContinuousClock.Instant?
    private var controlChannelOpen = false
    private var topologies: [Topology] = []
    /// Since when reconnect attempts have found a subscribed queue missing; `nil` once a restore succeeds.
    private var queueMissingSince: ContinuousClock.Instant?
    private var pendingDeclarations: [PendingDeclaration] = []
    private var publishers: [UInt16: PublisherChannel] = [:]
    private var consumers: [UInt16: ConsumerChannel] = [:]
    private var freeChannels: [UInt16] = []
    private var nextChannel = Int(controlChannel) + 1
    /// The highest channel number the broker allows, as negotiated by the last connection.
    private var channelMax = Int(UInt16.max)
    private var commandBuffer: [DriverCommand] = []
    private var closeContinuations: [CheckedContinuation<Void, Never>] = []
    private var closeRequested = false
    /// Cleared by `stopWaitingForReconnects`: while disconnected, callers then wait for nothing.
    private var waitsForReconnects = true
    private var nextSubscription: UInt64 = 1
    private var nextConsumer: UInt64 = 1
    private var idleTurns = 0
    /// The eventfd and the socket, reused by every poll(2).
    private var pollDescriptors = [pollfd](repeating: pollfd(), count: 2)
    /// Whether the last poll saw the socket readable; frames already buffered are checked apart.
    private var socketNeedsReading = true

    init(configuration: AMQPConfiguration, logger: Logger, shared: ConnectionShared) {
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "amqp.broker"] = "\(configuration.redactedDescription)"
        self.logger = logger
        self.shared = shared
    }

    // MARK: - The loop

    func run(reportingFirstConnection firstConnection: CheckedContinuation<Void, any Error>) {
        do {
            let connection = try openConnection()
            link = .connected(connection)
            try openControlChannel(connection)
        } catch {
            let reported = Self.amqpError(error)
            if case .connected(let connection) = link { amqp_destroy_connection(connection) }
            link = .closed
            shared.setState(.closed)
            for command in shared.closeInbox() { fail(command, with: .connectionClosed) }
            logger.error("AMQP connection failed", metadata: ["error": "\(reported)"])
            firstConnection.resume(throwing: reported)
            return
        }
        shared.generation.store(1, ordering: .relaxed)
        shared.setState(.connected)
        logger.info("AMQP connection open")
        firstConnection.resume()

        while !closeRequested {
            var didWork = takeCommands()
            if closeRequested { break }
            let now = ContinuousClock.now
            switch link {
            case .connected(let connection):
                didWork = flushPublishes(connection) || didWork
                // A failed write destroys the connection: reading must not touch it then.
                if case .connected = link { didWork = drainIncomingFrames(connection) || didWork }
            case .disconnected(_, let nextAttempt, _, _):
                if now >= nextAttempt {
                    reconnect()
                    didWork = true
                }
            case .closed:
                break
            }
            expireWaits(now: ContinuousClock.now)
            expireResumeChecks(now: ContinuousClock.now)
            // One yield before sleeping: callers' next commands (acks, publishes) usually follow
            // within microseconds, and catching them awake saves two context switches.
            idleTurns = didWork ? 0 : idleTurns + 1
            if idleTurns == 1 { sched_yield() }
            waitForActivity(sleeping: idleTurns > 1 && shared.prepareToSleep())
        }
        finishClosing()
    }

    private func takeCommands() -> Bool {
        shared.takeCommands(into: &commandBuffer)
        guard !commandBuffer.isEmpty else { return false }
        for command in commandBuffer { handle(command) }
        commandBuffer.removeAll(keepingCapacity: true)
        flushHeldAcks()
        return true
    }

    /// Polls the socket (and, when `sleeping`, the wake-up eventfd) to learn whether frames wait.
    /// A busy loop only peeks (timeout 0); a sleeping one waits for a frame, a command, a deadline,
    /// or the moment librabbitmq must send or check a heartbeat.
    private func waitForActivity(sleeping: Bool) {
        pollDescriptors[0] = pollfd(fd: shared.wakeDescriptor, events: Int16(POLLIN), revents: 0)
        var descriptorCount = 1
        if case .connected(let connection) = link {
            pollDescriptors[1] = pollfd(fd: amqp_get_sockfd(connection), events: Int16(POLLIN), revents: 0)
            descriptorCount = 2
        }
        let ready = poll(&pollDescriptors, nfds_t(descriptorCount), sleeping ? sleepMilliseconds() : 0)
        if pollDescriptors[0].revents != 0 { shared.clearWakeUp() }
        // A sleep that timed out still lets librabbitmq run once, to send a due heartbeat and to
        // notice a missing one.
        socketNeedsReading = descriptorCount == 2 && (pollDescriptors[1].revents != 0 || (sleeping && ready == 0))
    }

    private func sleepMilliseconds() -> Int32 {
        var timeout = Duration.milliseconds(500)
        if case .connected(let connection) = link {
            let heartbeat = amqp_get_heartbeat(connection)
            if heartbeat > 0 { timeout = min(timeout, .seconds(heartbeat) / 4) }
        }
        if let deadline = nextDeadline() {
            timeout = min(timeout, max(.zero, deadline - ContinuousClock.now))
        }
        let (seconds, attoseconds) = timeout.components
        return Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1)
    }

    // MARK: - Commands

    private func handle(_ command: DriverCommand) {
        switch command {
        case .declare(let topology, let continuation):
            guard case .connected(let connection) = link else {
                pendingDeclarations.append(PendingDeclaration(topology: topology, enqueuedAt: .now, continuation: continuation))
                return
            }
            do {
                try declare(topology, on: connection)
                topologies.append(topology)
                continuation.resume()
            } catch {
                continuation.resume(throwing: reportedError(error))
            }
        case .queueStatus(let queue, let continuation):
            guard case .connected(let connection) = link else {
                continuation.resume(throwing: AMQPError.connectionLost(reason: "not connected while looking up queue '\(queue)'"))
                return
            }
            do {
                continuation.resume(returning: try queueStatus(queue, on: connection))
            } catch .channel(.notFound) {
                continuation.resume(returning: nil)
            } catch {
                continuation.resume(throwing: reportedError(error))
            }
        case .openPublisher(let window, let continuation):
            guard let channel = allocateChannel() else {
                continuation.resume(throwing: AMQPError.tooManyChannels(limit: channelMax))
                return
            }
            let publisher = PublisherChannel(window: window)
            publishers[channel] = publisher
            guard case .connected(let connection) = link else {
                continuation.resume(returning: channel)
                return
            }
            do {
                try openPublisherChannel(channel, publisher, on: connection)
                continuation.resume(returning: channel)
            } catch {
                // The caller gets the error and no publisher, so none is left to open again after a reconnect.
                publishers[channel] = nil
                freeChannels.append(channel)
                continuation.resume(throwing: reportedError(error))
            }
        case .publish(let channel, let message, let enqueuedAt, let continuation):
            guard let publisher = publishers[channel] else {
                continuation.resume(throwing: AMQPError.connectionClosed)
                return
            }
            publisher.waiting.append(WaitingPublish(message: message, enqueuedAt: enqueuedAt, completion: .single(continuation)))
        case .publishBatch(let channel, let messages, let enqueuedAt, let continuation):
            guard let publisher = publishers[channel] else {
                continuation.resume(throwing: AMQPError.connectionClosed)
                return
            }
            let batch = PublishBatch(count: messages.count, continuation: continuation)
            for (index, message) in messages.enumerated() {
                publisher.waiting.append(WaitingPublish(message: message, enqueuedAt: enqueuedAt, completion: .batch(batch, index: index)))
            }
        case .consume(let spec, let stream, let continuation):
            guard let channel = allocateChannel() else {
                stream.finish()
                continuation.resume(throwing: AMQPError.tooManyChannels(limit: channelMax))
                return
            }
            let key = ConsumerKey(channel: channel, id: nextConsumer)
            nextConsumer += 1
            let consumer = ConsumerChannel(spec: spec, stream: stream, id: key.id)
            consumers[channel] = consumer
            guard case .connected(let connection) = link else {
                continuation.resume(returning: key)
                return
            }
            do {
                try subscribe(channel, consumer, on: connection)
                continuation.resume(returning: key)
            } catch {
                // The caller gets the error and no consumer, so none is left to subscribe again after a
                // reconnect: one whose subscription cost the connection would cost every reconnect too.
                consumers[channel] = nil
                freeChannels.append(channel)
                stream.finish()
                continuation.resume(throwing: reportedError(error))
            }
        case .cancelConsumer(let key):
            // A consumer that ended already may have left its channel number to another one.
            guard let consumer = consumers[key.channel], consumer.id == key.id else { return }
            remove(consumer, on: key.channel)
        case .settle(let channel, let subscription, let deliveryTag, let settlement):
            // A settle from an earlier subscription (before a reconnect, or of a cancelled consumer
            // whose channel number was reused) would name a tag the current one never issued.
            guard case .connected = link,
                  let consumer = consumers[channel], consumer.consumerTag != nil, consumer.subscription == subscription
            else { return }
            consumer.acks.settle(deliveryTag, settlement) { send($0, on: channel) }
        case .close(let continuation):
            if let continuation { closeContinuations.append(continuation) }
            closeRequested = true
        case .stopWaitingForReconnects:
            waitsForReconnects = false
        }
    }

    /// Sends one settlement frame on the current connection; nothing when it is gone. (A failed send
    /// destroys the connection, and one settlement may call for two frames: the second must not touch it.)
    private func send(_ frame: AckCoalescer.Frame, on channel: UInt16) {
        guard case .connected(let connection) = link else { return }
        let status: Int32
        switch frame {
        case .ack(let deliveryTag, let multiple):
            status = amqp_basic_ack(connection, channel, deliveryTag, multiple ? 1 : 0)
        case .nack(let deliveryTag, let multiple, let requeue):
            status = amqp_basic_nack(connection, channel, deliveryTag, multiple ? 1 : 0, requeue ? 1 : 0)
        case .reject(let deliveryTag, let requeue):
            status = amqp_basic_reject(connection, channel, deliveryTag, requeue ? 1 : 0)
        }
        if status != AMQP_STATUS_OK.rawValue {
            connectionLost(.connectionLost(reason: CDecode.status(status)))
        }
    }

    /// Sends the acks each consumer held back while taking the last batch of commands.
    private func flushHeldAcks() {
        for (channel, consumer) in consumers {
            guard case .connected = link else { return }
            consumer.acks.flush { send($0, on: channel) }
        }
    }

    private func fail(_ command: DriverCommand, with error: AMQPError) {
        switch command {
        case .declare(_, let continuation): continuation.resume(throwing: error)
        case .queueStatus(_, let continuation): continuation.resume(throwing: error)
        case .openPublisher(_, let continuation): continuation.resume(throwing: error)
        case .publish(_, _, _, let continuation): continuation.resume(throwing: error)
        case .publishBatch(_, _, _, let continuation): continuation.resume(throwing: error)
        case .consume(_, let stream, let continuation):
            stream.finish()
            continuation.resume(throwing: error)
        case .cancelConsumer, .settle, .stopWaitingForReconnects: break
        case .close(let continuation): continuation?.resume()
        }
    }

    private static func amqpError(_ error: any Error) -> AMQPError {
        (error as? CallFailure)?.error ?? (error as? AMQPError) ?? .protocolError("\(error)")
    }

    /// A free channel number, or nil when every number up to the broker's `channel_max` is taken: the broker
    /// closes a connection that opens a channel beyond it, with every publisher and consumer on it.
    private func allocateChannel() -> UInt16? {
        if let channel = freeChannels.popLast() { return channel }
        if case .connected(let connection) = link {
            let negotiated = Int(amqp_get_channel_max(connection))
            channelMax = negotiated == 0 ? Int(UInt16.max) : negotiated
        }
        guard nextChannel <= channelMax else { return nil }
        defer { nextChannel += 1 }
        return UInt16(nextChannel)
    }

    private func reportedError(_ failure: CallFailure) -> AMQPError {
        switch failure {
        case .channel(let error):
            return error
        case .connection(let error), .refused(let error):
            connectionLost(error)
            return error
        }
    }

    // MARK: - Publishing

    /// Sends what waits on every open publisher channel, up to each confirm window. Over plain TCP the
    /// frames of the whole burst go out in one write (see `PublishFrames`); over TLS through librabbitmq.
    private func flushPublishes(_ connection: amqp_connection_state_t) -> Bool {
        guard !isBlocked else { return false }
        let frames = configuration.useTLS ? nil : publishFrames
        let frameMax = Int(amqp_get_frame_max(connection))
        var sent = false
        for (channel, publisher) in publishers where publisher.isOpen {
            while publisher.tracker.hasRoom, let waiting = publisher.waiting.popFirst() {
                let message = waiting.message
                arena.reset()
                var properties = arena.properties(message.properties)
                if let frames {
                    do {
                        try frames.append(message, properties: &properties, channel: channel, frameMax: frameMax)
                    } catch {
                        // Never sent, so it takes no delivery tag.
                        waiting.completion.finish(.failure(error))
                        continue
                    }
                    _ = publisher.tracker.track(InFlightPublish(message: message, completion: waiting.completion))
                    sent = true
                    if frames.count >= Self.publishBurstBytes, !writePublishFrames(frames, on: connection) { return true }
                } else {
                    do {
                        // librabbitmq would fail the whole connection on it.
                        try PublishFrames.checkNames(of: message)
                    } catch {
                        waiting.completion.finish(.failure(error))
                        continue
                    }
                    _ = publisher.tracker.track(InFlightPublish(message: message, completion: waiting.completion))
                    sent = true
                    let status = message.body.withUnsafeBytes { body in
                        amqp_basic_publish(
                            connection, channel, arena.bytes(message.exchange), arena.bytes(message.routingKey),
                            message.mandatory ? 1 : 0, 0, &properties,
                            amqp_bytes_t(len: body.count, bytes: UnsafeMutableRawPointer(mutating: body.baseAddress)))
                    }
                    if status != AMQP_STATUS_OK.rawValue {
                        connectionLost(.connectionLost(reason: CDecode.status(status)))
                        return true
                    }
                }
            }
        }
        if let frames, frames.count > 0 { _ = writePublishFrames(frames, on: connection) }
        return sent
    }

    /// False when the connection was lost on the way; the publishes in flight have failed then.
    private func writePublishFrames(_ frames: PublishFrames, on connection: amqp_connection_state_t) -> Bool {
        guard let failure = frames.write(to: amqp_get_sockfd(connection), timeout: configuration.operationTimeout) else {
            return true
        }
        connectionLost(.connectionLost(reason: failure))
        return false
    }

    private func settleConfirm(_ publisher: PublisherChannel, tag: UInt64, multiple: Bool, acknowledged: Bool) {
        publisher.tracker.settle(tag: tag, multiple: multiple, acknowledged: acknowledged) { entry, outcome in
            switch outcome {
            case .confirmed:
                entry.completion.finish(.success(()))
            case .nacked:
                entry.completion.finish(.failure(.publishNacked(
                    exchange: entry.message.exchange, routingKey: entry.message.routingKey)))
            case .returned(let code, let text):
                entry.completion.finish(.failure(.publishReturned(
                    exchange: entry.message.exchange, routingKey: entry.message.routingKey, code: code, detail: text)))
            }
        }
    }

    private func failInFlight(_ publisher: PublisherChannel, with error: AMQPError) {
        publisher.tracker.removeAll { $0.completion.finish(.failure(error)) }
        publisher.incoming = nil
    }

    // MARK: - Incoming frames

    private func drainIncomingFrames(_ connection: amqp_connection_state_t) -> Bool {
        guard socketNeedsReading || amqp_frames_enqueued(connection) != 0 || amqp_data_in_buffer(connection) != 0 else {
            return false
        }
        socketNeedsReading = false
        var handled = 0
        var frame = amqp_frame_t()
        var noWait = timeval(tv_sec: 0, tv_usec: 0)
        while handled < Self.framesPerTurn {
            // A frame's handling may have lost the connection; it is the same one otherwise.
            guard case .connected = link else { return true }
            let status = amqp_simple_wait_frame_noblock(connection, &frame, &noWait)
            if status == AMQP_STATUS_TIMEOUT.rawValue { break }
            guard status == AMQP_STATUS_OK.rawValue else {
                connectionLost(.connectionLost(reason: CDecode.status(status)))
                return true
            }
            handled += 1
            handle(frame, on: connection)
        }
        for consumer in consumers.values { consumer.handOverBurst() }
        if case .connected(let connection) = link { amqp_maybe_release_buffers(connection) }
        return handled > 0
    }

    private func handle(_ frame: amqp_frame_t, on connection: amqp_connection_state_t) {
        switch Int32(frame.frame_type) {
        case AMQP_FRAME_METHOD:
            handleMethod(frame.payload.method, channel: frame.channel, on: connection)
        case AMQP_FRAME_HEADER:
            let header = frame.payload.properties
            let properties = CDecode.properties(header.decoded.assumingMemoryBound(to: amqp_basic_properties_t.self))
            updateIncoming(on: frame.channel) { content in
                content.properties = properties
                content.expectedSize = Int(header.body_size)
                content.body.reserveCapacity(content.expectedSize)
                content.headerSeen = true
            }
        case AMQP_FRAME_BODY:
            let fragment = frame.payload.body_fragment
            updateIncoming(on: frame.channel) { content in
                content.body.append(contentsOf: UnsafeRawBufferPointer(start: fragment.bytes, count: fragment.len))
            }
        default:
            break
        }
    }

    /// Applies a content frame to the message being assembled on `channel`, and hands the message on
    /// once its body is complete.
    /// The content is taken out of its channel while it is updated, so its body is never shared and
    /// appending to it copies nothing.
    private func updateIncoming(on channel: UInt16, _ update: (inout IncomingContent) -> Void) {
        if let consumer = consumers[channel], var content = consumer.incoming {
            consumer.incoming = nil
            update(&content)
            if content.headerSeen, content.body.count >= content.expectedSize {
                deliver(content, to: consumer, channel: channel)
            } else {
                consumer.incoming = content
            }
        } else if let publisher = publishers[channel], var content = publisher.incoming {
            publisher.incoming = nil
            update(&content)
            if content.headerSeen, content.body.count >= content.expectedSize {
                markReturned(content, on: publisher)
            } else {
                publisher.incoming = content
            }
        }
    }

    private func deliver(_ content: IncomingContent, to consumer: ConsumerChannel, channel: UInt16) {
        guard case .delivery(let deliveryTag, let redelivered) = content.kind else { return }
        if let offset = StreamOffset.position(in: content.properties.headers) {
            if let check = consumer.resumeCheck {
                consumer.resumeCheck = nil
                // The record read before the reconnect. (A later one means retention removed it meanwhile.)
                if offset == check.record.offset {
                    guard content.body == check.record.body else {
                        end(consumer, on: channel, with: .streamNotResumed(
                            queue: consumer.spec.queue, offset: offset, reason: "another record is at that offset"))
                        return
                    }
                    if case .connected = link {
                        consumer.acks.settle(deliveryTag, .ack(multiple: false)) { send($0, on: channel) }
                    }
                    return
                }
            }
            consumer.lastStreamRecord = StreamRecord(offset: offset, body: content.body)
        }
        consumer.deliver(AMQPDelivery(
            body: content.body, properties: content.properties, exchange: content.exchange,
            routingKey: content.routingKey, redelivered: redelivered, deliveryTag: deliveryTag,
            receivedAt: .now, shared: shared, channel: channel, generation: shared.generation.load(ordering: .relaxed),
            subscription: consumer.subscription))
    }

    private func markReturned(_ content: IncomingContent, on publisher: PublisherChannel) {
        guard case .returned(let code, let text) = content.kind else { return }
        // Only a mandatory message comes back: an identical one published without the flag is not it.
        let matched = publisher.tracker.markReturned(code: code, text: text) { entry in
            entry.message.mandatory
                && entry.message.exchange == content.exchange
                && entry.message.routingKey == content.routingKey
                && entry.message.properties.messageID == content.properties.messageID
                && entry.message.body == content.body
        }
        if !matched {
            logger.warning("basic.return matched no message in flight", metadata: [
                "exchange": "\(content.exchange)", "routingKey": "\(content.routingKey)"])
        }
    }

    private func handleMethod(_ method: amqp_method_t, channel: UInt16, on connection: amqp_connection_state_t) {
        switch method.id {
        case AMQP_BASIC_DELIVER_METHOD:
            let deliver = method.decoded.assumingMemoryBound(to: amqp_basic_deliver_t.self).pointee
            guard let consumer = subscribed(on: channel, tag: deliver.consumer_tag) else { return }
            consumer.incoming = IncomingContent(
                kind: .delivery(deliveryTag: deliver.delivery_tag, redelivered: deliver.redelivered != 0),
                exchange: CDecode.string(deliver.exchange), routingKey: CDecode.string(deliver.routing_key))
        case AMQP_BASIC_ACK_METHOD:
            let ack = method.decoded.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee
            if let publisher = publishers[channel] {
                settleConfirm(publisher, tag: ack.delivery_tag, multiple: ack.multiple != 0, acknowledged: true)
            }
        case AMQP_BASIC_NACK_METHOD:
            let nack = method.decoded.assumingMemoryBound(to: amqp_basic_nack_t.self).pointee
            if let publisher = publishers[channel] {
                settleConfirm(publisher, tag: nack.delivery_tag, multiple: nack.multiple != 0, acknowledged: false)
            }
        case AMQP_BASIC_RETURN_METHOD:
            let returned = method.decoded.assumingMemoryBound(to: amqp_basic_return_t.self).pointee
            publishers[channel]?.incoming = IncomingContent(
                kind: .returned(code: returned.reply_code, text: CDecode.string(returned.reply_text)),
                exchange: CDecode.string(returned.exchange), routingKey: CDecode.string(returned.routing_key))
        case AMQP_BASIC_CANCEL_METHOD:
            // consumer_cancel_notify: the broker ended the subscription (queue deleted, node lost).
            let cancel = method.decoded.assumingMemoryBound(to: amqp_basic_cancel_t.self).pointee
            guard let consumer = subscribed(on: channel, tag: cancel.consumer_tag) else { return }
            consumers[channel] = nil
            logger.warning("the broker cancelled a consumer", metadata: ["queue": "\(consumer.spec.queue)"])
            consumer.finish(throwing: AMQPError.channelClosed(
                operation: "consuming from queue '\(consumer.spec.queue)'", code: 0,
                detail: "the broker cancelled the subscription (queue deleted or moved)"))
            let reply = amqp_channel_close(connection, channel, AMQP_REPLY_SUCCESS)
            if reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION {
                connectionLost(.connectionLost(reason: CDecode.status(reply.library_error)))
                return
            }
            freeChannels.append(channel)
        case AMQP_CHANNEL_CLOSE_METHOD:
            let close = method.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
            var closeOk = amqp_channel_close_ok_t(dummy: 0)
            _ = amqp_send_method(connection, channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &closeOk)
            channelClosedByBroker(channel, code: close.reply_code, text: CDecode.string(close.reply_text), on: connection)
        case AMQP_CONNECTION_CLOSE_METHOD:
            let close = method.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            var closeOk = amqp_connection_close_ok_t(dummy: 0)
            _ = amqp_send_method(connection, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &closeOk)
            connectionLost(.connectionClosedByBroker(code: close.reply_code, detail: CDecode.string(close.reply_text)))
        case AMQP_CONNECTION_BLOCKED_METHOD:
            let blocked = method.decoded.assumingMemoryBound(to: amqp_connection_blocked_t.self).pointee
            isBlocked = true
            blockedSince = .now
            shared.setBlocked(true)
            logger.warning("the broker blocked publishing", metadata: ["reason": "\(CDecode.string(blocked.reason))"])
        case AMQP_CONNECTION_UNBLOCKED_METHOD:
            isBlocked = false
            blockedSince = nil
            shared.setBlocked(false)
            logger.info("the broker unblocked publishing")
        default:
            logger.debug("ignored an AMQP method", metadata: ["method": "\(method.id)", "channel": "\(channel)"])
        }
    }

    /// The consumer on `channel` if it is the subscription `tag` names. A channel number is taken again once
    /// its consumer is removed, while frames read during the channel's close may still wait in librabbitmq's
    /// queue; those name the earlier subscription's tag and are dropped (their channel is closed, so the broker
    /// has requeued them), never handed to the consumer that holds the number now.
    private func subscribed(on channel: UInt16, tag: amqp_bytes_t) -> ConsumerChannel? {
        guard let consumer = consumers[channel], let current = consumer.consumerTag, CDecode.bytes(tag, spell: current)
        else { return nil }
        return consumer
    }

    private func channelClosedByBroker(_ channel: UInt16, code: UInt16, text: String, on connection: amqp_connection_state_t) {
        if let publisher = publishers[channel] {
            let error = Self.channelError(operation: "publishing", code: code, text: text)
            logger.warning("the broker closed a publisher channel", metadata: ["error": "\(error)"])
            publisher.isOpen = false
            failInFlight(publisher, with: error)
            do {
                try openPublisherChannel(channel, publisher, on: connection)
            } catch {
                _ = reportedError(error)
            }
        } else if let consumer = consumers.removeValue(forKey: channel) {
            let error = Self.channelError(operation: "consuming from queue '\(consumer.spec.queue)'", code: code, text: text)
            logger.warning("the broker closed a consumer channel", metadata: ["error": "\(error)"])
            consumer.finish(throwing: error)
            freeChannels.append(channel)
        } else if channel == Self.controlChannel {
            controlChannelOpen = false
        }
    }

    // MARK: - Synchronous broker calls

    private static func channelError(operation: String, code: UInt16, text: String) -> AMQPError {
        switch Int32(code) {
        case AMQP_ACCESS_REFUSED: .accessRefused(operation: operation, detail: text)
        case AMQP_NOT_FOUND: .notFound(operation: operation, detail: text)
        case AMQP_PRECONDITION_FAILED: .preconditionFailed(operation: operation, detail: text)
        default: .channelClosed(operation: operation, code: code, detail: text)
        }
    }

    /// Reads the reply of the call just made on `channel`. When the broker closed the channel, the
    /// close is acknowledged and the caller learns the channel is gone.
    private func checkReply(_ operation: @autoclosure () -> String, channel: UInt16, on connection: amqp_connection_state_t) throws(CallFailure) {
        let reply = amqp_get_rpc_reply(connection)
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            return
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            switch reply.reply.id {
            case AMQP_CHANNEL_CLOSE_METHOD:
                let close = reply.reply.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
                var closeOk = amqp_channel_close_ok_t(dummy: 0)
                _ = amqp_send_method(connection, channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &closeOk)
                if channel == Self.controlChannel { controlChannelOpen = false }
                throw .channel(Self.channelError(operation: operation(), code: close.reply_code, text: CDecode.string(close.reply_text)))
            case AMQP_CONNECTION_CLOSE_METHOD:
                let close = reply.reply.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
                var closeOk = amqp_connection_close_ok_t(dummy: 0)
                _ = amqp_send_method(connection, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &closeOk)
                let error = AMQPError.connectionClosedByBroker(code: close.reply_code, detail: CDecode.string(close.reply_text))
                // A close the broker sends of its own accord (CONNECTION_FORCED, say) names no method.
                throw close.class_id == 0 ? .connection(error) : .refused(error)
            default:
                throw .connection(.protocolError("unexpected reply \(reply.reply.id) while \(operation())"))
            }
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            throw .connection(.connectionLost(reason: "\(CDecode.status(reply.library_error)) while \(operation())"))
        default:
            throw .connection(.protocolError("no reply while \(operation())"))
        }
    }

    private func openChannel(_ channel: UInt16, on connection: amqp_connection_state_t) throws(CallFailure) {
        amqp_channel_open(connection, channel)
        try checkReply("opening channel \(channel)", channel: channel, on: connection)
    }

    private func openControlChannel(_ connection: amqp_connection_state_t) throws(CallFailure) {
        guard !controlChannelOpen else { return }
        try openChannel(Self.controlChannel, on: connection)
        controlChannelOpen = true
    }

    private func declare(_ topology: Topology, on connection: amqp_connection_state_t) throws(CallFailure) {
        let channel = Self.controlChannel
        try openControlChannel(connection)
        for exchange in topology.exchanges {
            arena.reset()
            amqp_exchange_declare(
                connection, channel, arena.bytes(exchange.name), arena.bytes(exchange.kind.amqpName), 0,
                exchange.durable ? 1 : 0, exchange.autoDelete ? 1 : 0, exchange.isInternal ? 1 : 0,
                arena.table(exchange.arguments))
            try checkReply("declaring exchange '\(exchange.name)'", channel: channel, on: connection)
        }
        for queue in topology.queues {
            if queue.keepsExisting {
                if try queueExists(queue.name, on: connection) { continue }
                // The broker closed the channel on the missing queue.
                try openControlChannel(connection)
            }
            arena.reset()
            amqp_queue_declare(
                connection, channel, arena.bytes(queue.name), 0, queue.durable ? 1 : 0, queue.exclusive ? 1 : 0,
                queue.autoDelete ? 1 : 0, arena.table(queue.declarationArguments))
            try checkReply("declaring queue '\(queue.name)'", channel: channel, on: connection)
        }
        for binding in topology.bindings {
            arena.reset()
            switch binding.destination {
            case .queue(let queue):
                amqp_queue_bind(
                    connection, channel, arena.bytes(queue), arena.bytes(binding.source),
                    arena.bytes(binding.routingKey), arena.table(binding.arguments))
                try checkReply("binding queue '\(queue)' to exchange '\(binding.source)'", channel: channel, on: connection)
            case .exchange(let destination):
                amqp_exchange_bind(
                    connection, channel, arena.bytes(destination), arena.bytes(binding.source),
                    arena.bytes(binding.routingKey), arena.table(binding.arguments))
                try checkReply("binding exchange '\(destination)' to exchange '\(binding.source)'", channel: channel, on: connection)
            }
        }
    }

    /// A queue whose process is not running yet (a broker that is starting) is not taken for a missing one.
    private func queueExists(_ queue: String, on connection: amqp_connection_state_t) throws(CallFailure) -> Bool {
        do {
            _ = try queueStatus(queue, on: connection)
            return true
        } catch {
            guard case .channel(let refusal) = error, case .notFound = refusal, !Self.isStillStarting(refusal) else {
                throw error
            }
            return false
        }
    }

    private func queueStatus(_ queue: String, on connection: amqp_connection_state_t) throws(CallFailure) -> AMQPConnection.QueueStatus {
        let channel = Self.controlChannel
        try openControlChannel(connection)
        arena.reset()
        let declareOk = amqp_queue_declare(connection, channel, arena.bytes(queue), 1, 0, 0, 0, amqp_empty_table)
        try checkReply("looking up queue '\(queue)'", channel: channel, on: connection)
        return AMQPConnection.QueueStatus(
            messageCount: declareOk.map { Int($0.pointee.message_count) } ?? 0,
            consumerCount: declareOk.map { Int($0.pointee.consumer_count) } ?? 0)
    }

    private func openPublisherChannel(_ channel: UInt16, _ publisher: PublisherChannel, on connection: amqp_connection_state_t) throws(CallFailure) {
        try openChannel(channel, on: connection)
        amqp_confirm_select(connection, channel)
        try checkReply("selecting confirm mode", channel: channel, on: connection)
        publisher.isOpen = true
    }

    private func subscribe(_ channel: UInt16, _ consumer: ConsumerChannel, on connection: amqp_connection_state_t) throws(CallFailure) {
        let spec = consumer.spec
        if let topology = spec.topology { try declare(topology, on: connection) }
        try openChannel(channel, on: connection)
        amqp_basic_qos(connection, channel, 0, spec.prefetch, 0)
        try checkReply("setting prefetch for queue '\(spec.queue)'", channel: channel, on: connection)
        arena.reset()
        let consumeOk = amqp_basic_consume(
            connection, channel, arena.bytes(spec.queue), amqp_empty_bytes, 0, 0, spec.exclusive ? 1 : 0,
            arena.table(consumer.subscribeArguments))
        try checkReply("consuming from queue '\(spec.queue)'", channel: channel, on: connection)
        consumer.consumerTag = consumeOk.map { CDecode.string($0.pointee.consumer_tag) } ?? ""
        consumer.acks = AckCoalescer()
        // A stream read from a fixed offset starts over at 0 when it is deleted and declared again; resumed
        // past its end, this subscription would wait for nothing, or later read other records as its own.
        consumer.resumeCheck = consumer.lastStreamRecord.flatMap { record in
            spec.arguments[StreamOffset.name] == nil ? nil : (record, .now + configuration.operationTimeout)
        }
        consumer.subscription = nextSubscription
        nextSubscription += 1
    }

    // MARK: - Connecting

    private func openConnection() throws(AMQPError) -> amqp_connection_state_t {
        guard let connection = amqp_new_connection() else { throw .protocolError("librabbitmq could not allocate a connection") }
        do {
            try login(connection)
            return connection
        } catch {
            amqp_destroy_connection(connection)
            throw error
        }
    }

    /// What a TLS status of `amqp_socket_open_noblock` means, or `nil` for any other status.
    private static func tlsFailure(_ status: Int32) -> String? {
        switch status {
        case AMQP_STATUS_SSL_PEER_VERIFY_FAILED.rawValue:
            "the broker's certificate is not signed by a trusted certificate authority (cacertfile)"
        case AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED.rawValue:
            "the broker's certificate does not name the host connected to"
        case AMQP_STATUS_SSL_CONNECTION_FAILED.rawValue, AMQP_STATUS_SSL_ERROR.rawValue:
            "the TLS handshake failed (is the port a TLS listener, and does the broker accept this client?)"
        default:
            nil
        }
    }

    private func login(_ connection: amqp_connection_state_t) throws(AMQPError) {
        let configuration = self.configuration
        let socket: OpaquePointer?
        if configuration.useTLS {
            socket = amqp_ssl_socket_new(connection)
            guard let socket else { throw .tls(reason: "librabbitmq could not create a TLS socket") }
            let tls = configuration.tls
            if let caFile = tls.caCertificateFile {
                guard amqp_ssl_socket_set_cacert(socket, caFile) == AMQP_STATUS_OK.rawValue else {
                    throw .tls(reason: "cannot read the CA certificate file '\(caFile)'")
                }
            } else if switchboard_ssl_socket_trust_system_authorities(socket) != 1 {
                throw .tls(reason: "cannot load the system's certificate authorities")
            }
            if let certificate = tls.clientCertificateFile, let key = tls.clientKeyFile,
               amqp_ssl_socket_set_key(socket, certificate, key) != AMQP_STATUS_OK.rawValue {
                throw .tls(reason: "cannot read the client certificate '\(certificate)' or key '\(key)'")
            }
            amqp_ssl_socket_set_verify_peer(socket, tls.verifyPeer ? 1 : 0)
            amqp_ssl_socket_set_verify_hostname(socket, tls.verifyHostname ? 1 : 0)
        } else {
            socket = amqp_tcp_socket_new(connection)
            guard socket != nil else { throw .protocolError("librabbitmq could not create a TCP socket") }
        }
        var connectTimeout = Self.makeTimeval(configuration.connectTimeout)
        let opened = amqp_socket_open_noblock(socket, configuration.host, Int32(configuration.port), &connectTimeout)
        guard opened == AMQP_STATUS_OK.rawValue else {
            if let reason = Self.tlsFailure(opened) {
                throw .tls(reason: "\(reason) (\(configuration.host):\(configuration.port))")
            }
            // librabbitmq keeps no errno from its non-blocking connect, so name the usual causes.
            let reason = opened == AMQP_STATUS_SOCKET_ERROR.rawValue
                ? "connection refused or host unreachable (is the broker running?)"
                : CDecode.status(opened)
            throw .brokerUnreachable(host: configuration.host, port: configuration.port, reason: reason)
        }
        amqp_set_handshake_timeout(connection, &connectTimeout)
        var operationTimeout = Self.makeTimeval(configuration.operationTimeout)
        amqp_set_rpc_timeout(connection, &operationTimeout)

        arena.reset()
        var properties = arena.table(clientProperties())
        let reply = switchboard_amqp_login_plain(
            connection, configuration.virtualHost, 0, Self.frameMax, Int32(configuration.heartbeatSeconds),
            &properties, configuration.user, configuration.password)
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            return
        case AMQP_RESPONSE_SERVER_EXCEPTION where reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD:
            let close = reply.reply.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            let text = CDecode.string(close.reply_text)
            switch Int32(close.reply_code) {
            case AMQP_ACCESS_REFUSED: throw .authenticationFailed(user: configuration.user, detail: text)
            case AMQP_NOT_ALLOWED: throw .virtualHostNotAllowed(vhost: configuration.virtualHost, detail: text)
            default: throw .connectionClosedByBroker(code: close.reply_code, detail: text)
            }
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            throw .connectionLost(reason: "during the AMQP handshake with \(configuration.host):\(configuration.port): \(CDecode.status(reply.library_error))")
        default:
            throw .protocolError("unexpected reply during the AMQP handshake")
        }
    }

    private func clientProperties() -> AMQPTable {
        var properties: AMQPTable = [
            "product": "Switchboard",
            "platform": "Swift",
            "capabilities": [
                "connection.blocked": true,
                "publisher_confirms": true,
                "consumer_cancel_notify": true,
                "basic.nack": true,
                "authentication_failure_close": true,
                "exchange_exchange_bindings": true,
                "per_consumer_qos": true,
            ],
        ]
        if let name = configuration.connectionName { properties["connection_name"] = .string(name) }
        return properties
    }

    private static func makeTimeval(_ duration: Duration) -> timeval {
        let (seconds, attoseconds) = duration.components
        return Glibc.timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
    }

    // MARK: - Losing and regaining the connection

    private func connectionLost(_ error: AMQPError) {
        guard case .connected(let connection) = link else { return }
        amqp_destroy_connection(connection)
        let now = ContinuousClock.now
        let generation = shared.generation.load(ordering: .relaxed)
        shared.generation.store(generation + 1, ordering: .relaxed)
        link = .disconnected(
            failedAttempts: 0, nextAttempt: now + configuration.reconnectBackoff.delay(afterFailedAttempts: 0),
            since: now, lastError: "\(error)")
        shared.setState(.reconnecting(failedAttempts: 0))
        forgetChannels(failingInFlightWith: .connectionLost(reason: "\(error)"))
        logger.warning("AMQP connection lost; reconnecting", metadata: ["error": "\(error)"])
    }

    /// Marks every channel of a connection that is gone as closed, so that the next connection opens each
    /// again before using it (the broker closes a connection that uses a channel it did not open).
    private func forgetChannels(failingInFlightWith error: AMQPError) {
        controlChannelOpen = false
        if isBlocked {
            isBlocked = false
            blockedSince = nil
            shared.setBlocked(false)
        }
        for publisher in publishers.values {
            publisher.isOpen = false
            failInFlight(publisher, with: error)
        }
        for consumer in consumers.values {
            consumer.handOverBurst()
            consumer.consumerTag = nil
            consumer.incoming = nil
        }
    }

    private func reconnect() {
        guard case .disconnected(let failedAttempts, _, let since, _) = link else { return }
        do {
            let connection = try openConnection()
            link = .connected(connection)
            shared.generation.add(1, ordering: .relaxed)
            try restore(on: connection)
            queueMissingSince = nil
            shared.setState(.connected)
            logger.info("AMQP connection re-established", metadata: ["failedAttempts": "\(failedAttempts)"])
        } catch {
            let reason = "\(Self.amqpError(error))"
            if case .connected(let connection) = link {
                amqp_destroy_connection(connection)
                // The attempt may have opened channels (the control channel, publishers, consumers) first.
                forgetChannels(failingInFlightWith: .connectionLost(reason: reason))
            }
            let attempts = failedAttempts + 1
            let delay = configuration.reconnectBackoff.delay(afterFailedAttempts: attempts)
            link = .disconnected(failedAttempts: attempts, nextAttempt: .now + delay, since: since, lastError: reason)
            shared.setState(.reconnecting(failedAttempts: attempts))
            logger.warning("AMQP reconnect failed", metadata: ["error": "\(reason)", "retryIn": "\(delay)"])
        }
    }

    /// Puts back what the lost connection had: topology, publisher channels, subscriptions.
    /// A channel-level failure affects only its part; a connection-level one ends the attempt.
    private func restore(on connection: amqp_connection_state_t) throws(CallFailure) {
        try openControlChannel(connection)
        for topology in topologies {
            if let error = try channelFailure(of: { () throws(CallFailure) in try declare(topology, on: connection) }) {
                logger.error("declaring a topology again after reconnecting failed", metadata: ["error": "\(error)"])
            }
        }
        let declarations = pendingDeclarations
        pendingDeclarations = []
        for (index, pending) in declarations.enumerated() {
            do {
                if let error = try channelFailure(of: { () throws(CallFailure) in try declare(pending.topology, on: connection) }) {
                    pending.continuation.resume(throwing: error)
                } else {
                    topologies.append(pending.topology)
                    pending.continuation.resume()
                }
            } catch {
                // The broker refused this declaration itself: its caller learns why, and the next attempt goes on
                // without it. Otherwise every attempt would fail on it until its caller gave up waiting.
                guard case .refused(let refusal) = error else {
                    pendingDeclarations = Array(declarations[index...])
                    throw error
                }
                pending.continuation.resume(throwing: refusal)
                pendingDeclarations = Array(declarations[(index + 1)...])
                throw error
            }
        }
        for (channel, publisher) in publishers.sorted(by: { $0.key < $1.key }) {
            if let error = try channelFailure(of: { () throws(CallFailure) in try openPublisherChannel(channel, publisher, on: connection) }) {
                logger.error("reopening a publisher channel failed", metadata: ["error": "\(error)"])
            }
        }
        for (channel, consumer) in consumers.sorted(by: { $0.key < $1.key }) {
            if let error = try channelFailure(of: { () throws(CallFailure) in try subscribe(channel, consumer, on: connection) }) {
                // A broker that has just started may accept connections before every queue is up again (a
                // stream's or quorum queue's process still starting, a durable queue not yet recovered).
                // That passes: this reconnect attempt fails, and the next one, after the usual pause,
                // subscribes again. A queue missing for longer was deleted: its consumer ends.
                if Self.isStillStarting(error) || queueMayStillAppear(error) { throw .connection(error) }
                logger.error(
                    "subscribing again after reconnecting failed; the consumer ends",
                    metadata: ["queue": "\(consumer.spec.queue)", "error": "\(error)"])
                consumers[channel] = nil
                freeChannels.append(channel)
                consumer.finish(throwing: error)
            }
        }
    }

    /// True for the broker's answer about a durable queue whose process is not running yet ("home node ... of
    /// durable queue ... is down or inaccessible"), which a broker gives while it starts.
    private static func isStillStarting(_ error: AMQPError) -> Bool {
        guard case .notFound(_, let detail) = error else { return false }
        return detail.contains("is down or inaccessible")
    }

    /// How long reconnect attempts wait for a subscribed queue that the broker says does not exist.
    static var missingQueueGrace: Duration { .seconds(30) }

    /// True for "no queue" while the queues of this connection's subscriptions have been missing for less
    /// than `missingQueueGrace`.
    private func queueMayStillAppear(_ error: AMQPError) -> Bool {
        guard case .notFound = error else { return false }
        let now = ContinuousClock.now
        let since = queueMissingSince ?? now
        queueMissingSince = since
        return since.duration(to: now) < Self.missingQueueGrace
    }

    /// Runs `call`, returning a channel-level failure instead of throwing it.
    private func channelFailure(of call: () throws(CallFailure) -> Void) throws(CallFailure) -> AMQPError? {
        do {
            try call()
            return nil
        } catch {
            switch error {
            case .channel(let channelError): return channelError
            case .connection, .refused: throw error
            }
        }
    }

    // MARK: - Deadlines

    /// Why callers are waiting right now, since when, and the error they get when it lasts too long.
    private var currentWait: (since: ContinuousClock.Instant, limit: Duration, error: AMQPError)? {
        switch link {
        case .disconnected(_, _, let since, let lastError):
            let limit = waitsForReconnects ? configuration.reconnectWaitTimeout : .zero
            return (since, limit, .notConnected(waited: limit, lastError: lastError))
        case .connected:
            guard let blockedSince else { return nil }
            let limit = configuration.blockedPublishTimeout
            return (blockedSince, limit, .blockedTimeout(waited: limit))
        case .closed:
            return nil
        }
    }

    private func expireWaits(now: ContinuousClock.Instant) {
        guard let wait = currentWait else { return }
        func expired(_ enqueuedAt: ContinuousClock.Instant) -> Bool {
            max(enqueuedAt, wait.since) + wait.limit <= now
        }
        for publisher in publishers.values {
            while let first = publisher.waiting.first, expired(first.enqueuedAt) {
                publisher.waiting.removeFirst().completion.finish(.failure(wait.error))
            }
        }
        if case .disconnected = link {
            pendingDeclarations.removeAll { pending in
                guard expired(pending.enqueuedAt) else { return false }
                pending.continuation.resume(throwing: wait.error)
                return true
            }
        }
    }

    /// Ends each stream subscription that did not get its last record back in time after a reconnect.
    private func expireResumeChecks(now: ContinuousClock.Instant) {
        for (channel, consumer) in consumers {
            // Closing a channel may lose the connection; a reconnect then checks again.
            guard case .connected = link else { return }
            guard let check = consumer.resumeCheck, check.deadline <= now else { continue }
            end(consumer, on: channel, with: .streamNotResumed(
                queue: consumer.spec.queue, offset: check.record.offset,
                reason: "nothing came within \(configuration.operationTimeout)"))
        }
    }

    /// Ends a stream subscription that cannot resume, and closes its channel.
    private func end(_ consumer: ConsumerChannel, on channel: UInt16, with error: AMQPError) {
        logger.error("a stream subscription cannot resume; the consumer ends", metadata: ["error": "\(error)"])
        remove(consumer, on: channel, throwing: error)
    }

    /// Forgets a consumer, ends its sequence (with `error`, if any) and closes its channel.
    private func remove(_ consumer: ConsumerChannel, on channel: UInt16, throwing error: AMQPError? = nil) {
        consumers[channel] = nil
        consumer.finish(throwing: error)
        if case .connected(let connection) = link {
            // Acks held back for coalescing must reach the broker before the channel closes,
            // or it would requeue messages that were handled.
            consumer.acks.flush { send($0, on: channel) }
            guard case .connected = link else { return }
            let reply = amqp_channel_close(connection, channel, AMQP_REPLY_SUCCESS)
            if reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION {
                connectionLost(.connectionLost(reason: CDecode.status(reply.library_error)))
                return
            }
        }
        freeChannels.append(channel)
    }

    private func nextDeadline() -> ContinuousClock.Instant? {
        var deadline: ContinuousClock.Instant?
        if case .disconnected(_, let nextAttempt, _, _) = link { deadline = nextAttempt }
        if case .connected = link {
            for consumer in consumers.values {
                if let check = consumer.resumeCheck { deadline = min(deadline ?? check.deadline, check.deadline) }
            }
        }
        guard let wait = currentWait else { return deadline }
        var oldest: ContinuousClock.Instant?
        for publisher in publishers.values {
            if let first = publisher.waiting.first { oldest = min(oldest ?? first.enqueuedAt, first.enqueuedAt) }
        }
        if case .disconnected = link, let first = pendingDeclarations.first {
            oldest = min(oldest ?? first.enqueuedAt, first.enqueuedAt)
        }
        if let oldest {
            let expiry = max(oldest, wait.since) + wait.limit
            deadline = min(deadline ?? expiry, expiry)
        }
        return deadline
    }

    // MARK: - Closing

    private func finishClosing() {
        for command in shared.closeInbox() {
            if case .close(let continuation) = command {
                if let continuation { closeContinuations.append(continuation) }
            } else {
                fail(command, with: .connectionClosed)
            }
        }
        for publisher in publishers.values {
            failInFlight(publisher, with: .connectionClosed)
            while let waiting = publisher.waiting.popFirst() {
                waiting.completion.finish(.failure(.connectionClosed))
            }
        }
        publishers = [:]
        for consumer in consumers.values { consumer.finish() }
        consumers = [:]
        for pending in pendingDeclarations { pending.continuation.resume(throwing: AMQPError.connectionClosed) }
        pendingDeclarations = []
        if case .connected(let connection) = link {
            _ = amqp_connection_close(connection, AMQP_REPLY_SUCCESS)
            amqp_destroy_connection(connection)
        }
        link = .closed
        shared.generation.add(1, ordering: .relaxed)
        shared.setState(.closed)
        shared.setBlocked(false)
        logger.info("AMQP connection closed")
        for continuation in closeContinuations { continuation.resume() }
        closeContinuations = []
    }
}
