// swift-tools-version: 6.2
import PackageDescription

/// One set of settings for every Swift target.
let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "switchboard",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "SwitchboardCommon", targets: ["SwitchboardCommon"]),
        .library(name: "SwitchboardAMQP", targets: ["SwitchboardAMQP"]),
        .library(name: "SwitchboardRuntime", targets: ["SwitchboardRuntime"]),
        .library(name: "SwitchboardService", targets: ["SwitchboardService"]),
        .executable(name: "switchboard-router", targets: ["RouterService"]),
        .executable(name: "switchboard-notifier", targets: ["NotifierService"]),
        .executable(name: "switchboard-closer", targets: ["CloserService"]),
        .executable(name: "switchboard", targets: ["OpsCLI"]),
        .executable(name: "switchboard-demo", targets: ["Demo"]),
        .executable(name: "switchboard-loadbench", targets: ["LoadBench"]),
        .executable(name: "switchboard-gateway", targets: ["GatewayService"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(
            url: "https://github.com/apple/swift-configuration.git", from: "1.4.0",
            traits: ["JSON", "CommandLineArguments"]
        ),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CRabbitMQ",
            pkgConfig: "librabbitmq",
            providers: [.apt(["librabbitmq-dev"])]
        ),
        .target(
            name: "SwitchboardAMQP",
            dependencies: [
                "CRabbitMQ",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SwitchboardCommon",
            dependencies: [
                .product(name: "Collections", package: "swift-collections"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "AMQPDemo",
            dependencies: [
                "SwitchboardAMQP",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "AMQPBench",
            dependencies: [
                "BenchOptions",
                "SwitchboardAMQP",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SwitchboardRuntime",
            dependencies: [
                "SwitchboardAMQP",
                "SwitchboardCommon",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SwitchboardSimulation",
            dependencies: [
                "SwitchboardCommon",
                .product(name: "Collections", package: "swift-collections"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BenchOptions",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "AMQPStress",
            dependencies: [
                "SwitchboardAMQP",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "CoreBench",
            dependencies: [
                "SwitchboardCommon",
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "Soak",
            dependencies: ["SwitchboardSimulation"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SwitchboardService",
            dependencies: [
                "SwitchboardAMQP",
                "SwitchboardRuntime",
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "RouterService",
            dependencies: ["SwitchboardRuntime", "SwitchboardService"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "NotifierService",
            dependencies: ["SwitchboardRuntime", "SwitchboardService"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "CloserService",
            dependencies: ["SwitchboardRuntime", "SwitchboardService"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SwitchboardOps",
            dependencies: [
                "SwitchboardAMQP",
                "SwitchboardCommon",
                "SwitchboardRuntime",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "OpsCLI",
            dependencies: [
                "SwitchboardOps",
                "SwitchboardAMQP",
                "SwitchboardCommon",
                "SwitchboardRuntime",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "Demo",
            dependencies: [
                "SwitchboardOps",
                "SwitchboardAMQP",
                "SwitchboardCommon",
                "SwitchboardRuntime",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "LoadBench",
            dependencies: [
                "BenchOptions",
                "SwitchboardOps",
                "SwitchboardAMQP",
                "SwitchboardCommon",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SwitchboardGateway",
            dependencies: [
                "SwitchboardAMQP",
                "SwitchboardCommon",
                "SwitchboardRuntime",
                "SwitchboardService",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            resources: [
                .embedInCode("Page/index.html"),
                .embedInCode("Page/agent.css"),
                .embedInCode("Page/agent.js"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "GatewayService",
            dependencies: ["SwitchboardGateway"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SwitchboardGatewayTests",
            dependencies: [
                "SwitchboardTestSupport",
                "SwitchboardGateway",
                "SwitchboardAMQP",
                "SwitchboardCommon",
                "SwitchboardRuntime",
                "SwitchboardService",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "LoadBenchTests",
            dependencies: ["LoadBench", "BenchOptions"],
            resources: [.copy("Fixtures")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SwitchboardOpsTests",
            dependencies: ["SwitchboardOps", "SwitchboardCommon", "SwitchboardRuntime"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SwitchboardServiceTests",
            dependencies: [
                "SwitchboardService",
                "SwitchboardAMQP",
                "SwitchboardRuntime",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SwitchboardSimulationTests",
            dependencies: [
                "SwitchboardSimulation",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SwitchboardCommonTests",
            dependencies: [
                "SwitchboardCommon",
                "SwitchboardTestSupport",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            resources: [.copy("Fixtures")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SwitchboardAMQPTests",
            dependencies: ["SwitchboardAMQP"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SwitchboardRuntimeTests",
            dependencies: [
                "SwitchboardCommon",
                "SwitchboardRuntime",
                "SwitchboardTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: swiftSettings
        ),
        // A throwaway RabbitMQ node per test or suite, for every test target that needs a broker.
        .target(
            name: "SwitchboardTestSupport",
            dependencies: [
                "SwitchboardAMQP",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            path: "Tests/SwitchboardTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "SwitchboardTestSupport",
                "SwitchboardAMQP",
                "SwitchboardCommon",
                "SwitchboardRuntime",
                "SwitchboardOps",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
