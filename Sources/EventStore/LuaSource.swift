/// The Lua of the Redis Function libraries lives in `.lua` files beside the
/// code (`Sources/*/Lua/`), embedded in the binary at build time: no resource
/// bundle ships next to the executable, and the files are plain Lua that
/// `make lint-lua` checks and every integration test loads into Redis.
public enum LuaSource {
    /// The helpers both libraries include (`Lua/helpers.lua`).
    public static let helpers = String(decoding: PackageResources.helpers_lua, as: UTF8.self)

    /// A library's embedded bytes with each `--#include helpers.lua` line
    /// replaced by the helpers: a library is loaded on its own and cannot
    /// call another's locals.
    public static func library(_ bytes: [UInt8]) -> String {
        String(decoding: bytes, as: UTF8.self)
            .split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0 == "--#include helpers.lua" ? helpers : String($0) }
            .joined(separator: "\n")
    }

    /// The library's `local LIBRARY_VERSION = '<v>'`: the one place its version is written.
    public static func version(of source: String) -> String {
        let prefix = "local LIBRARY_VERSION = '"
        guard let line = source.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }), line.hasSuffix("'") else {
            preconditionFailure("a library declares its LIBRARY_VERSION")
        }
        return String(line.dropFirst(prefix.count).dropLast())
    }
}
