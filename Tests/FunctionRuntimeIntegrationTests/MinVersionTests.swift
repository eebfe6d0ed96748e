import Foundation
import FunctionRuntime
import HTTPTypes
import Testing
import ThreadDomain

/// `minVersion` waits only when the wait can succeed: the write side answers
/// first when the read model is behind. These gateways run no read-model
/// worker, so the read model never catches up: a request that waited would
/// answer 504 after five seconds instead of its refusal at once.
@Suite struct MinVersionTests {
    let creator = ULID.generate()

    private func expectRefusedAtOnce(
        _ gateway: TestGateway, _ uri: String, status: HTTPResponse.Status, code: String
    ) async throws {
        let started = ContinuousClock.now
        let response = try await gateway.get(uri)
        let took = ContinuousClock.now - started
        #expect(response.status == status, "\(uri): \(response.text)")
        #expect(try response.errorCode() == code)
        #expect(took < .seconds(1), "\(uri) waited \(took) before its refusal")
    }

    @Test func anUnknownThreadIs404AtOnceWhateverTheMinVersion() async throws {
        try await TestGateway.run(readSide: .setUp) { gateway in
            try await expectRefusedAtOnce(
                gateway, "/v1/threads/\(ULID.generate())?accountId=\(creator)&minVersion=9223372036854775807",
                status: .notFound, code: "thread_not_found")
        }
    }

    @Test func aStrangerIs403AtOnceEvenWhileTheReadModelIsBehind() async throws {
        try await TestGateway.run(readSide: .setUp) { gateway in
            let thread = try await gateway.createThread(creator: creator)
            for path in ["", "/messages", "/member-ids", "/administrator-ids"] {
                try await expectRefusedAtOnce(
                    gateway, "/v1/threads/\(thread)\(path)?accountId=\(ULID.generate())&minVersion=1",
                    status: .forbidden, code: "not_participant")
            }
        }
    }

    @Test func aMinVersionAboveTheThreadsVersionIs400AtOnce() async throws {
        try await TestGateway.run(readSide: .setUp) { gateway in
            let thread = try await gateway.createThread(creator: creator)
            try await expectRefusedAtOnce(
                gateway, "/v1/threads/\(thread)?accountId=\(creator)&minVersion=2", status: .badRequest, code: "invalid_request")
        }
    }

    @Test func aDestroyedThreadIs410AtOnce() async throws {
        try await TestGateway.run(readSide: .setUp) { gateway in
            let thread = try await gateway.createThread(creator: creator)
            let destroyed = try await gateway.post("/v1/threads/\(thread)/destroy", json(["accountId": creator.rawValue]))
            #expect(destroyed.status == .ok)
            try await expectRefusedAtOnce(
                gateway, "/v1/threads/\(thread)?accountId=\(creator)&minVersion=2", status: .gone, code: "thread_destroyed")
        }
    }

    /// Many readers waiting for the same write are all answered once the worker projects it.
    @Test func concurrentReadersOfOneWriteAllSeeIt() async throws {
        try await TestGateway.run(readSide: .worker) { gateway in
            let thread = try await gateway.createThread(creator: creator)
            let version = try await gateway.addMessage("hello", by: creator, to: thread).answer().version
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for _ in 0..<50 {
                    group.addTask {
                        try await gateway.get("/v1/threads/\(thread)/messages?accountId=\(creator)&minVersion=\(version)").status
                    }
                }
                return try await group.reduce(into: [HTTPResponse.Status]()) { $0.append($1) }
            }
            #expect(statuses.count == 50)
            #expect(statuses.allSatisfy { $0 == .ok })
        }
    }
}
