/// What a batch publish reports once every one of its messages is settled: success when the broker
/// confirmed them all, otherwise the error of the earliest message (in the batch's order) that failed.
/// Messages settle in any order (a nack can come before the acks of earlier messages, a lost connection
/// fails the rest at once), so the batch waits for the last one and remembers the lowest failing index.
struct BatchOutcome {
    private(set) var unsettled: Int
    private(set) var firstFailure: (index: Int, error: AMQPError)?

    init(count: Int) {
        precondition(count > 0, "a batch holds at least one message")
        unsettled = count
    }

    /// Records the outcome of the message at `index`. Returns the batch's result when this was the
    /// last unsettled message, nil while others are still in flight.
    mutating func settle(_ index: Int, _ result: Result<Void, AMQPError>) -> Result<Void, AMQPError>? {
        precondition(unsettled > 0, "settling a message of a batch that is already settled")
        if case .failure(let error) = result, index < firstFailure?.index ?? Int.max {
            firstFailure = (index, error)
        }
        unsettled -= 1
        guard unsettled == 0 else { return nil }
        if let firstFailure { return .failure(firstFailure.error) }
        return .success(())
    }
}
