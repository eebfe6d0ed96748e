public import EventStore

/// The `threadweave_rm` Redis Function library (Lua): the read model's
/// writes, each one version-gated and single-slot. A thread's read-model keys
/// share the thread's `{pNN}` tag; an account's index keys share
/// `{acct:<id>}`, so the projector updates them in a call of their own.
public enum ReadModelLibrary {
    public static let name = "threadweave_rm"
    /// `LIBRARY_VERSION` of the Lua: bump it with every change.
    public static let version = LuaSource.version(of: source)

    public static let library = StoreSetup.Library(name: name, source: source)

    /// `Lua/threadweave_rm.lua`, with the helpers included.
    public static let source = LuaSource.library(PackageResources.threadweave_rm_lua)
}

extension StoreSetup.Library {
    /// The read model's library.
    public static let readModel = ReadModelLibrary.library
    /// Every Function library the service calls: what set-up loads and readiness checks.
    public static let all: [Self] = [.eventStore, .readModel]
}
