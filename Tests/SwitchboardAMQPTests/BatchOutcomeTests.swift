import Testing

@testable import SwitchboardAMQP

struct BatchOutcomeTests {
    private let nacked = AMQPError.publishNacked(exchange: "x", routingKey: "k")
    private let returned = AMQPError.publishReturned(exchange: "x", routingKey: "nowhere", code: 312, detail: "NO_ROUTE")
    private let lost = AMQPError.connectionLost(reason: "socket closed")

    @Test func aBatchSucceedsOnlyWhenItsLastMessageIsConfirmed() {
        var outcome = BatchOutcome(count: 3)
        #expect(outcome.settle(0, .success(())) == nil)
        #expect(outcome.settle(2, .success(())) == nil)
        #expect(outcome.settle(1, .success(())).map { (try? $0.get()) != nil } == true)
    }

    @Test func aNackInTheMiddleFailsTheBatchAfterTheOthersSettle() {
        var outcome = BatchOutcome(count: 3)
        #expect(outcome.settle(0, .success(())) == nil)
        #expect(outcome.settle(1, .failure(nacked)) == nil)
        #expect(failure(of: outcome.settle(2, .success(()))) == nacked)
    }

    @Test func theEarliestFailingMessageNamesTheErrorWhateverOrderTheySettleIn() {
        var outcome = BatchOutcome(count: 4)
        #expect(outcome.settle(3, .failure(nacked)) == nil)
        #expect(outcome.settle(1, .failure(returned)) == nil)
        #expect(outcome.settle(2, .failure(nacked)) == nil)
        #expect(outcome.firstFailure?.index == 1)
        #expect(failure(of: outcome.settle(0, .success(()))) == returned)
    }

    @Test func aConnectionLostMidBatchIsReportedEvenAfterEarlierConfirms() {
        var outcome = BatchOutcome(count: 3)
        #expect(outcome.settle(0, .success(())) == nil)
        #expect(outcome.settle(1, .failure(lost)) == nil)
        #expect(failure(of: outcome.settle(2, .failure(lost))) == lost)
    }

    private func failure(of result: Result<Void, AMQPError>?) -> AMQPError? {
        guard case .failure(let error)? = result else { return nil }
        return error
    }
}
