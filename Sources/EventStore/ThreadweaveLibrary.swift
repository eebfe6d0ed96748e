/// The `threadweave` Redis Function library (Lua), loaded by `threadweave setup`
/// and re-loaded by any process that finds it missing.
public enum ThreadweaveLibrary {
    public static let name = "threadweave"
    /// `LIBRARY_VERSION` of the Lua: bump it with every change; `threadweave setup` records it in `tw:config`.
    public static let version = LuaSource.version(of: source)

    /// `Lua/threadweave.lua`, with the helpers included.
    public static let source = LuaSource.library(PackageResources.threadweave_lua)
}
