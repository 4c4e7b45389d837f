@testable import SwitchboardRuntime
import Testing

@Suite struct RetryDelayTests {
    @Test func pausesDoubleFromAHundredMillisecondsUpToFiveSecondsAndStartOverAfterASuccess() {
        var retry = RetryDelay()
        let pauses = (0..<9).map { _ in retry.next() }
        #expect(pauses == [100, 200, 400, 800, 1_600, 3_200, 5_000, 5_000, 5_000].map { Duration.milliseconds($0) })
        retry.reset()
        #expect(retry.next() == .milliseconds(100))
    }
}
