/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, fast, deterministic generator with the same sequence on every
/// platform, for synthetic workloads (`dmatrace synth`) and for tests and fuzz seeds that must be rebuilt
/// from their seed. Not for anything that needs unpredictability.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in 0..<n (n > 0) up to a modulo bias of n / 2^64, irrelevant for workload shapes and tests.
    public mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}
