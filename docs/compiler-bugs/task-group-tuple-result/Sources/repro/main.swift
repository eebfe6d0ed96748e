// Swift 6.3.1, Linux x86_64: `swift build -c release && .build/release/repro`
// crashes ("pure virtual method called", "Bad pointer dereference" in
// swift_retain / tuple_initializeWithCopy) or prints a count below 10000.
// `swift build` (debug) prints "ok 10000". See README.md beside this file.
struct ID: Hashable, Sendable { let raw: String }
struct Report: Sendable, Hashable { var applied = 0; var rejected: [Int64: String] = [:] }
struct TypedError: Error, Sendable { var code: String; var underlying: (any Error)? }

@inline(never) func work(_ n: Int) async throws(TypedError) -> Report {
    if n % 7 == 3 { throw TypedError(code: "x", underlying: nil) }
    var report = Report()
    report.applied = n
    return report
}

func apply(_ ids: [ID]) async -> [ID: Result<Report, TypedError>] {
    await withTaskGroup(of: (ID, Result<Report, TypedError>).self) { group in
        for (index, id) in ids.enumerated() {
            group.addTask {
                do throws(TypedError) {
                    return (id, .success(try await work(index)))
                } catch {
                    return (id, .failure(error))
                }
            }
        }
        var results: [ID: Result<Report, TypedError>] = [:]
        for await (id, result) in group { results[id] = result }
        return results
    }
}

let ids = (0..<50).map { ID(raw: "id-\($0)") }
var total = 0
for _ in 0..<200 { total += await apply(ids).count }
print(total == 10_000 ? "ok \(total)" : "WRONG \(total) (expected 10000)")
