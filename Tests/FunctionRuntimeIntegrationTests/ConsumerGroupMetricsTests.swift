import EventStore
import Foundation
import FunctionRuntime
import ReadModel
import RedisClient
import Testing
import ThreadDomain

/// "Lag is visible": the consumer-group gauges, recorded through the process's
/// metrics factory (as `serve` hands it to its worker), are served on `/metrics`.
@Suite(.timeLimit(.minutes(2))) struct ConsumerGroupMetricsTests {
    @Test func lagPendingAndDeadLettersOfEachPartitionAreOnMetrics() async throws {
        try await TestGateway.run(readSide: .setUp) { gateway in
            // Five events on one partition and no worker: all of them lag.
            let creator = ULID.generate()
            let thread = try await gateway.createThread(creator: creator)
            for index in 0..<4 { _ = try await gateway.addMessage("m\(index)", by: creator, to: thread) }
            let partition = gateway.layout.partition(of: thread)
            let log = gateway.layout.changeLog(partition: partition)
            // A consumer takes two and dies: two pending, three still lag.
            _ = try await gateway.redis.send(
                RedisCommand("XREADGROUP", "GROUP", StoreSetup.consumerGroup, "gone", "COUNT", "2", "STREAMS", log, ">"))
            _ = try await gateway.redis.send(
                RedisCommand("XADD", gateway.layout.deadLetters(partition: partition), "*", "reason", "test"))

            let monitor = ConsumerGroupMonitor(redis: gateway.redis, layout: gateway.layout, metricsFactory: gateway.metrics.factory)
            monitor.record(try await monitor.sample())

            let gauges = try await prometheusValues(gateway)
            for other in gateway.layout.allPartitions {
                let label = #"{partition="\#(gateway.layout.hashTag(partition: other).dropFirst().dropLast())"}"#
                let expected: (lag: Double, pending: Double, dead: Double) = other == partition ? (3, 2, 1) : (0, 0, 0)
                #expect(gauges["threadweave_rmu_lag" + label] == expected.lag, "\(label)")
                #expect(gauges["threadweave_rmu_pending" + label] == expected.pending, "\(label)")
                #expect(gauges["threadweave_rmu_dead_letters" + label] == expected.dead, "\(label)")
            }
        }
    }

    /// Every event the worker projects is timed from its append: the histogram's count reaches the
    /// events appended, and in a quiet test each took under a second.
    @Test func theWorkerTimesEachProjectionFromItsAppend() async throws {
        try await TestGateway.run(readSide: .worker) { gateway in
            let creator = ULID.generate()
            let thread = try await gateway.createThread(creator: creator)
            for index in 0..<4 { _ = try await gateway.addMessage("m\(index)", by: creator, to: thread) }
            let events = Double(try await gateway.streamLength(of: thread))
            let name = ReadModelWorker.projectionDelayLabel
            var values: [String: Double] = [:]
            for _ in 0..<200 {
                values = try await prometheusValues(gateway)
                if (values[name + "_count"] ?? 0) >= events { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(values[name + "_count"] == events)
            #expect(values[name + #"_bucket{le="+Inf"}"#] == events)
            #expect(values[name + #"_bucket{le="1.0"}"#] == events)
            let sum = try #require(values[name + "_sum"])
            #expect(sum >= 0 && sum < events)
        }
    }

    /// `name{labels} value` lines of the `/metrics` text.
    private func prometheusValues(_ gateway: TestGateway) async throws -> [String: Double] {
        let response = try await gateway.get("/metrics")
        #expect(response.status == .ok)
        var values: [String: Double] = [:]
        for line in response.text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            values[String(line[..<space])] = value
        }
        return values
    }
}
