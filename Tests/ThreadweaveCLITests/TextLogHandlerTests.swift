import FunctionRuntime
import Logging
import Testing
@testable import threadweave

@Suite struct TextLogHandlerTests {
    /// The lines are swift-log's `StreamLogHandler` lines, metadata sorted by key, the event's over the logger's.
    @Test func writesStreamLogHandlersLines() {
        var handler = TextLogHandler(label: "threadweave.serve")
        handler[metadataKey: "request_id"] = "01J0000000000000000000REQ1"
        handler[metadataKey: "function"] = "get-thread"
        let event = LogEvent(
            level: .warning, message: "slow", metadata: ["function": "add-messages", "ms": "12"], source: "FunctionRuntime",
            file: #fileID, function: #function, line: #line)
        #expect(
            handler.line(for: event, at: "2026-12-02T15:54:40+0000")
                == "2026-12-02T15:54:40+0000 warning threadweave.serve: function=add-messages ms=12 request_id=01J0000000000000000000REQ1 [FunctionRuntime] slow\n")
        let bare = LogEvent(level: .info, message: "started", metadata: nil, source: "X", file: #fileID, function: #function, line: #line)
        #expect(TextLogHandler(label: "l").line(for: bare, at: "T") == "T info l: [X] started\n")
    }

    /// A line written while a request is served carries its id from `RequestScope`; one written outside does not.
    @Test func aLineWrittenForARequestCarriesItsId() {
        let handler = TextLogHandler(label: "l", metadataProvider: .requestId)
        let event = LogEvent(level: .error, message: "failed", metadata: ["code": "x"], source: "X", file: #fileID, function: #function, line: #line)
        let inside = RequestScope.$requestId.withValue("01J0000000000000000000REQ2") { handler.line(for: event, at: "T") }
        #expect(inside == "T error l: code=x request_id=01J0000000000000000000REQ2 [X] failed\n")
        #expect(handler.line(for: event, at: "T") == "T error l: code=x [X] failed\n")
    }
}
