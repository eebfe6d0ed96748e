import Foundation
@testable import RedisClient
import Testing

@Suite struct ReplyBatchTests {
    @Test func resumesOnceWithEveryReplyInCommandOrder() async throws {
        let batch = ReplyBatch(count: 3)
        let slots = (0..<3).map { ReplySlot(batch: batch, index: $0) }
        let replies = await batch.replies {
            // Completed out of order, as a cluster's nodes or a failed write may complete them.
            slots[2].complete(with: .success(.integer(2)))
            slots[0].complete(with: .success(.integer(0)))
            slots[1].fail(RedisError(code: .server, message: "ERR one"))
        }
        #expect(replies.count == 3)
        #expect(try replies[0].get() == .integer(0))
        #expect((try? replies[1].get()) == nil)
        #expect(try replies[2].get() == .integer(2))
    }

    @Test func theFirstResultForASlotCounts() async throws {
        let batch = ReplyBatch(count: 2)
        let first = ReplySlot(batch: batch, index: 0)
        let second = ReplySlot(batch: batch, index: 1)
        let replies = await batch.replies {
            first.complete(with: .success(.simpleString("OK")))
            // A write failing after the reply came must not replace it, nor count twice.
            first.fail(RedisError(code: .connectionClosed, message: "gone"))
            second.fail(RedisError(code: .connectionClosed, message: "gone"))
        }
        #expect(try replies[0].get() == .simpleString("OK"))
        #expect(replies[1].failureCode == .connectionClosed)
    }

    @Test func repliesFromAnotherThreadWakeTheWaiter() async {
        let batch = ReplyBatch(count: 100)
        let replies = await batch.replies {
            Thread.detachNewThread {
                for index in (0..<100).reversed() {
                    ReplySlot(batch: batch, index: index).complete(with: .success(.integer(index)))
                }
            }
        }
        #expect(replies.compactMap { try? $0.get() } == (0..<100).map { .integer($0) })
    }
}

extension Result where Failure == RedisError {
    fileprivate var failureCode: RedisError.Code? {
        if case .failure(let error) = self { error.code } else { nil }
    }
}
