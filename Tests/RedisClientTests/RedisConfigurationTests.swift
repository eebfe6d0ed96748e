import Testing

@testable import RedisClient

@Suite struct RedisConfigurationTests {
    @Test func hostOnlyUsesDefaults() throws {
        let configuration = try RedisConfiguration(url: "redis://cache.internal")
        #expect(configuration.endpoint == .tcp(host: "cache.internal", port: 6379))
        #expect(configuration.username == nil && configuration.password == nil)
        #expect(configuration.database == 0)
        #expect(configuration.connectTimeout == .seconds(2) && configuration.commandTimeout == .seconds(5))
        #expect(configuration.maximumConnections == 4)
    }

    @Test func passwordPortAndDatabase() throws {
        let configuration = try RedisConfiguration(url: "redis://:s3cret@10.0.0.5:6380/3")
        #expect(configuration.endpoint == .tcp(host: "10.0.0.5", port: 6380))
        #expect(configuration.username == nil)
        #expect(configuration.password == "s3cret")
        #expect(configuration.database == 3)
    }

    @Test func usernameAndPercentEncodedPassword() throws {
        let configuration = try RedisConfiguration(url: "redis://app%2Fuser:p%40ss%3Aw%2Fd@localhost/")
        #expect(configuration.username == "app/user")
        #expect(configuration.password == "p@ss:w/d")
        #expect(configuration.endpoint == .tcp(host: "localhost", port: 6379))
        #expect(configuration.database == 0)
    }

    @Test func ipv6Host() throws {
        let configuration = try RedisConfiguration(url: "redis://[::1]:7000?db=2")
        #expect(configuration.endpoint == .tcp(host: "::1", port: 7000))
        #expect(configuration.database == 2)
    }

    @Test func unixSocketWithDatabase() throws {
        let configuration = try RedisConfiguration(url: "unix:///var/run/redis/redis.sock?db=5")
        #expect(configuration.endpoint == .unixSocket(path: "/var/run/redis/redis.sock"))
        #expect(configuration.database == 5)
    }

    @Test func unixSocketWithPassword() throws {
        let configuration = try RedisConfiguration(url: "unix://:pw@/tmp/r.sock")
        #expect(configuration.endpoint == .unixSocket(path: "/tmp/r.sock"))
        #expect(configuration.password == "pw")
    }

    @Test(arguments: [
        "cache:6379", "http://cache", "redis://", "redis://:pw@", "redis://host:0", "redis://host:70000",
        "redis://host:port", "redis://host/-1", "redis://host/x", "redis://host?timeout=1", "unix://",
        "unix://relative.sock", "redis://:bad%zzpw@host", "redis://[::1", "redis://host/1?db=2",
    ])
    func invalidURLsAreRejected(url: String) {
        let error = #expect(throws: RedisError.self) { try RedisConfiguration(url: url) }
        #expect(error?.code == .invalidURL)
    }

    @Test func redissMeansTLSOnTheSameHostAndPort() throws {
        let secure = try RedisConfiguration(url: "rediss://app:pw@redis.internal:6380/2")
        #expect(secure.tls != nil)
        #expect(secure.endpoint == .tcp(host: "redis.internal", port: 6380))
        #expect(secure.username == "app" && secure.password == "pw" && secure.database == 2)
        #expect(try RedisConfiguration(url: "redis://redis.internal").tls == nil)
        #expect(try RedisConfiguration(url: "unix:///tmp/r.sock").tls == nil)
    }

    @Test func errorsNeverEchoThePassword() {
        let error = #expect(throws: RedisError.self) { try RedisConfiguration(url: "redis://:hunter2%zz@host") }
        #expect(error?.message.contains("hunter2") == false)
        #expect(error.map { "\($0)" }?.contains("hunter2") == false)
    }
}
