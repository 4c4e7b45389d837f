import SwitchboardAMQP
@testable import SwitchboardRuntime
import Testing

@Suite struct TakeoverBackoffTests {
    @Test func pausesDoubleFromAHundredMillisecondsUpToFiveSeconds() {
        let pauses = (0..<9).map { takeoverBackoff.delay(afterFailedAttempts: $0) }
        #expect(pauses == [100, 200, 400, 800, 1_600, 3_200, 5_000, 5_000, 5_000].map { Duration.milliseconds($0) })
    }
}
