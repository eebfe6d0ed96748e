import HTTPTypes
import Logging
public import Metrics
public import Prometheus
import ReadModel
public import ThreadFunctions
import Synchronization

/// The process's Prometheus metrics, in a registry owned by the process (no
/// global bootstrap), served as text on `GET /metrics`.
public struct RuntimeMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry

    private static let latencyBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
        .milliseconds(2500), .seconds(5), .seconds(10),
    ]

    private static var requests: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "threadweave", metricName: "function_requests", unitName: "total",
            helpText: "Function invocations over HTTP, by function and response status.")
    }
    private static var requestDuration: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "threadweave", metricName: "function_request_duration", unitName: "seconds",
            helpText: "Time from request to response of function invocations, by function and status.")
    }
    private static var retries: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "threadweave", metricName: "command_retries", unitName: "total",
            helpText: "Decide-and-append rounds repeated after an append conflict.")
    }
    private static var conflicts: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "threadweave", metricName: "command_conflicts", unitName: "total",
            helpText: "Commands answered 409 conflict after exhausting their retries.")
    }

    private static var openStreams: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "threadweave", metricName: "watch_streams_open", unitName: "",
            helpText: "Watch-thread streams (server-sent events) open now.")
    }

    /// The counter and histogram of each (function, status), made once: the
    /// registry builds names and takes its lock on every `make…` call.
    private let answerInstruments = AnswerInstruments()

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
    }

    /// swift-metrics over this registry, for parts that report through
    /// swift-metrics (the read-model worker's lag, pending and dead-letter
    /// gauges, its projection-delay histogram), so they reach `/metrics` without a global bootstrap.
    public var factory: any MetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets[ReadModelWorker.projectionDelayLabel] = ReadModelWorker.projectionDelayBuckets
        return factory
    }

    /// One function's answer, started at `started`: counted and timed by
    /// function and status, and logged at debug (the one place for both, for
    /// JSON answers and streams alike). Not at info: a line per request cost
    /// about a sixth of a query's CPU (docs/PERFORMANCE.md), and the metrics
    /// already count every answer; failures are logged at their own level.
    func recordAnswer(function: String, status: HTTPResponse.Status, since started: ContinuousClock.Instant, logger: Logger) {
        let elapsed = ContinuousClock.now - started
        recordRequest(function: function, status: status.code, duration: elapsed)
        logger.debug(
            "function answered",
            metadata: [
                "function": "\(function)", "status": "\(status.code)", "duration_ms": "\(Double(elapsed.nanoseconds) / 1_000_000)",
            ])
    }

    private func recordRequest(function: String, status: Int, duration: Duration) {
        let (counter, histogram) = answerInstruments.instruments(function: function, status: status) {
            let labels = [("function", function), ("status", String(status))]
            return (
                registry.makeCounter(descriptor: Self.requests, labels: labels),
                registry.makeDurationHistogram(descriptor: Self.requestDuration, labels: labels, buckets: Self.latencyBuckets)
            )
        }
        counter.increment()
        histogram.recordNanoseconds(duration.nanoseconds)
    }

    func streamOpened() {
        registry.makeGauge(descriptor: Self.openStreams).increment()
    }

    func streamClosed() {
        registry.makeGauge(descriptor: Self.openStreams).decrement()
    }

    /// The Prometheus text exposition of every metric.
    func exposition() -> String {
        registry.emitToString()
    }
}

extension RuntimeMetrics: CommandObserver {
    public func commandFinished(function: String, attempts: Int, error: FunctionError.Code?) {
        let labels = [("function", function)]
        if attempts > 1 {
            registry.makeCounter(descriptor: Self.retries, labels: labels).increment(by: Int64(attempts - 1))
        }
        if error == .conflict {
            registry.makeCounter(descriptor: Self.conflicts, labels: labels).increment()
        }
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}

/// The per-(function, status) instruments of `RuntimeMetrics`, made on first use.
private final class AnswerInstruments: Sendable {
    private struct Key: Hashable {
        var function: String
        var status: Int
    }

    typealias Instruments = (Prometheus.Counter, Prometheus.DurationHistogram)

    private let made = Mutex<[Key: Instruments]>([:])

    func instruments(function: String, status: Int, make: () -> Instruments) -> Instruments {
        let key = Key(function: function, status: status)
        if let existing = made.withLock({ $0[key] }) { return existing }
        let instruments = make()
        made.withLock { $0[key] = instruments }
        return instruments
    }
}
