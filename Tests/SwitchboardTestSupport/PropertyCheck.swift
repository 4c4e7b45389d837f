import PropertyBased
import Testing

/// `propertyCheck`, with an error thrown out of the property's body recorded as an issue of the test.
/// `propertyCheck` itself drops such an error (it runs the body under `try?`), so a property whose check
/// throws, a decoder refusing what it should read for one, would pass.
public func propertyCheckRecordingErrors<InputValue, ResultValue>(
    count: Int, input: Generator<ResultValue, some Sequence<InputValue>>,
    sourceLocation: SourceLocation = #_sourceLocation, perform body: (ResultValue) async throws -> Void
) async {
    await propertyCheck(
        count: count, input: input,
        perform: { value in
            do {
                try await body(value)
            } catch {
                Issue.record(error, sourceLocation: sourceLocation)
            }
        }, sourceLocation: sourceLocation)
}
