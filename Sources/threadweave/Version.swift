/// The version `threadweave --version` prints. SwiftPM runs no `git describe`
/// at build time without a plugin, so the version is committed here and
/// `make set-version VERSION=x.y.z` is the one way to change it (it rewrites
/// this line; tag the commit `vx.y.z`).
enum ThreadweaveVersion {
    static let current = "0.15.0"
}
