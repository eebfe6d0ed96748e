@testable import EventStore
import RedisClient
import Testing
import ThreadDomain

/// The event store's Function calls: keys of one thread (one slot), and
/// replies read by shape, with anything else refused.
@Suite struct ThreadweaveCallsTests {
    let layout = KeyLayout(namespace: "tw", partitionCount: 64)
    let thread = ThreadID("01J0000000000000000000THRD")!

    @Test func aLoadNamesItsFourKeysAllInTheThreadsSlot() {
        let call = LoadThreadCall(thread, layout: layout, baseVersion: 3, messageIds: [], commandId: "c1")
        #expect(call.command.keys == [
            layout.threadStream(thread), layout.snapshot(thread), layout.messageIndex(thread),
            layout.idempotencyRecord(thread, commandId: "c1"),
        ])
        let tag = layout.hashTag(partition: layout.partition(of: thread))
        #expect(call.command.keys.allSatisfy { $0.contains(tag) })
    }

    @Test func appendRepliesAreReadByStatus() throws {
        let call = AppendCall(
            AppendRequest(threadId: thread, expectedVersion: 1, events: [.threadDestroyed], actor: thread, commandId: "c", at: 1, idempotency: nil),
            layout: layout)
        func reply(_ parts: RedisValue...) -> RedisValue { .array(parts) }
        func text(_ value: String) -> RedisValue { .bulkString(Array(value.utf8)) }
        #expect(try call.decode(reply(text("appended"), .integer(2))) == .appended(version: 2))
        #expect(try call.decode(reply(text("conflict"), .integer(5))) == .conflict(actualVersion: 5))
        #expect(try call.decode(reply(text("duplicate"), .integer(1), .integer(2), text("{}"))) == .duplicate(command: 0, version: 2, result: "{}"))
        #expect(try call.decode(reply(text("reused"), .integer(2), .integer(7))) == .reused(command: 1))
        #expect(throws: RedisError.self) { try call.decode(reply(text("reused"), .integer(0))) }
        #expect(throws: RedisError.self) { try call.decode(reply(text("appended"))) }
        #expect(throws: RedisError.self) { try call.decode(reply(text("maybe"), .integer(1))) }
        #expect(throws: RedisError.self) { try call.decode(RedisValue.integer(1)) }
    }
}

/// The Lua files are the libraries: the helpers are included where asked,
/// and the version comes from the Lua itself.
@Suite struct LuaSourceTests {
    @Test func librariesIncludeTheHelpersAndDeclareTheirVersion() {
        #expect(!ThreadweaveLibrary.source.split(separator: "\n").contains("--#include helpers.lua"))
        #expect(ThreadweaveLibrary.source.contains(LuaSource.helpers))
        #expect(ThreadweaveLibrary.source.hasPrefix("#!lua name=threadweave\n"))
        #expect(ThreadweaveLibrary.source.contains("local LIBRARY_VERSION = '\(ThreadweaveLibrary.version)'"))
        #expect(Int(ThreadweaveLibrary.version) != nil)
    }

    @Test func anIncludeLineIsReplacedWholeAndNothingElse() {
        let library = LuaSource.library(Array("a\n--#include helpers.lua\n-- see --#include helpers.lua\nb".utf8))
        #expect(library == "a\n\(LuaSource.helpers)\n-- see --#include helpers.lua\nb")
        #expect(LuaSource.version(of: "x\nlocal LIBRARY_VERSION = '7'\n") == "7")
    }
}
