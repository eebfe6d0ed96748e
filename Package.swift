// swift-tools-version:6.1
import PackageDescription

/// One set of compiler settings for every target: Swift 6 language mode comes
/// from the tools version; these add the upcoming features we hold ourselves to.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("NonisolatedNonsendingByDefault"),
]

let package = Package(
    name: "threadweave",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "threadweave", targets: ["threadweave"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.1"),
        .package(url: "https://github.com/swiftlang/swift-subprocess.git", from: "1.0.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CHiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        .target(
            name: "RedisClient",
            dependencies: [
                "CHiredis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // A private redis-server child, supervised with swift-subprocess: for `serve`, `threadweave redis-server` and the tests.
        .target(
            name: "LocalRedis",
            dependencies: [
                "RedisClient",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Subprocess", package: "swift-subprocess"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(name: "ThreadDomain", swiftSettings: swiftSettings),
        .target(
            name: "EventStore",
            dependencies: [
                "ThreadDomain", "RedisClient",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [.embedInCode("Lua/threadweave.lua"), .embedInCode("Lua/helpers.lua")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ReadModel",
            dependencies: [
                "ThreadDomain", "EventStore", "RedisClient",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [.embedInCode("Lua/threadweave_rm.lua")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ThreadFunctions",
            dependencies: [
                "ThreadDomain", "EventStore", "ReadModel",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "FunctionRuntime",
            dependencies: [
                "ThreadFunctions", "EventStore", "ReadModel", "RedisClient",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [.embedInCode("openapi.json")],
            swiftSettings: swiftSettings
        ),
        // Function descriptors (functions/*.json) and the Kubernetes manifests generated from them.
        .target(name: "Deployment", swiftSettings: swiftSettings),
        .executableTarget(
            name: "threadweave",
            dependencies: [
                "Deployment", "FunctionRuntime", "ThreadFunctions", "ReadModel", "EventStore", "LocalRedis", "RedisClient",
                "ThreadDomain",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),

        // Test support: starts a private redis-server (or uses $REDIS_URL) and hands out unique namespaces.
        .target(
            name: "RedisTestSupport",
            dependencies: ["LocalRedis", "RedisClient", .product(name: "Logging", package: "swift-log")],
            path: "Tests/RedisTestSupport",
            swiftSettings: swiftSettings
        ),
        // Unit tests: no server, no network; `make test-unit` runs them alone.
        .testTarget(
            name: "RedisClientTests",
            dependencies: [
                "RedisClient",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(name: "DeploymentTests", dependencies: ["Deployment", "ThreadFunctions"], swiftSettings: swiftSettings),
        .testTarget(name: "ThreadDomainTests", dependencies: ["ThreadDomain"], swiftSettings: swiftSettings),
        .testTarget(name: "EventStoreTests", dependencies: ["EventStore", "ThreadDomain", "RedisClient"], swiftSettings: swiftSettings),
        .testTarget(name: "ReadModelTests", dependencies: ["ReadModel", "EventStore", "ThreadDomain", "RedisClient"], swiftSettings: swiftSettings),
        .testTarget(name: "ThreadFunctionsTests", dependencies: ["ThreadFunctions", "ThreadDomain", "ReadModel"], swiftSettings: swiftSettings),
        // Test support: key material and token helpers for authentication tests.
        .target(
            name: "AuthTestSupport",
            dependencies: [.product(name: "JWTKit", package: "jwt-kit")],
            path: "Tests/AuthTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FunctionRuntimeTests",
            dependencies: ["FunctionRuntime", "ThreadDomain", "ThreadFunctions", "AuthTestSupport", .product(name: "JWTKit", package: "jwt-kit")],
            swiftSettings: swiftSettings
        ),
        // The OpenAPI document against the registry, the inputs and the error codes.
        .testTarget(
            name: "APIContractTests", dependencies: ["FunctionRuntime", "ThreadFunctions", "ThreadDomain"], swiftSettings: swiftSettings),

        // Integration tests: a real redis-server (one the harness starts, or $TEST_REDIS_URL).
        // Store fixtures: both stores over a fresh namespace, and sample events.
        .target(
            name: "StoreTestSupport",
            dependencies: [
                "EventStore", "ThreadDomain", "RedisClient", "RedisTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/StoreTestSupport",
            swiftSettings: swiftSettings
        ),
        // Starts redis-server processes of its own.
        .testTarget(
            name: "LocalRedisTests",
            dependencies: [
                "LocalRedis", "RedisClient",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RedisClientIntegrationTests",
            dependencies: [
                "RedisClient", "RedisTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EventStoreIntegrationTests",
            dependencies: [
                "EventStore", "ThreadDomain", "RedisClient", "RedisTestSupport", "StoreTestSupport",
                .product(name: "Subprocess", package: "swift-subprocess"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ReadModelIntegrationTests",
            dependencies: [
                "ReadModel", "EventStore", "ThreadFunctions", "ThreadDomain", "RedisClient", "RedisTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ThreadFunctionsIntegrationTests",
            dependencies: ["ThreadFunctions", "EventStore", "ThreadDomain", "RedisClient", "StoreTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FunctionRuntimeIntegrationTests",
            dependencies: [
                "FunctionRuntime", "ThreadFunctions", "EventStore", "ReadModel", "LocalRedis", "RedisClient", "RedisTestSupport",
                "StoreTestSupport", "ThreadDomain", "AuthTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Starts built `threadweave` processes; depends on the executable so `swift test` builds it.
        .testTarget(
            name: "ThreadweaveCLITests",
            dependencies: [
                "threadweave", "EventStore", "LocalRedis", "ReadModel", "ThreadFunctions", "RedisClient", "RedisTestSupport", "ThreadDomain",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
