import Foundation
import TensorCore

/// A growable float buffer for workspaces and flat parameter storage (no per-step allocation).
final class FloatBuffer: @unchecked Sendable {
    private(set) var pointer: UnsafeMutablePointer<Float>
    private(set) var capacity: Int

    init(count: Int = 0) {
        capacity = max(count, 1)
        pointer = .allocate(capacity: capacity)
        pointer.initialize(repeating: 0, count: capacity)
    }

    deinit { pointer.deallocate() }

    /// At least `count` floats; contents are lost when it grows.
    @discardableResult
    func ensure(_ count: Int) -> UnsafeMutablePointer<Float> {
        if count > capacity {
            pointer.deallocate()
            capacity = count
            pointer = .allocate(capacity: capacity)
            pointer.initialize(repeating: 0, count: capacity)
        }
        return pointer
    }

    func zero(_ count: Int) { pointer.update(repeating: 0, count: min(count, capacity)) }
}

/// One named parameter tensor inside the flat parameter vector.
public struct ParameterSpec: Sendable, Equatable {
    /// PyTorch-style name, e.g. `prior.0.weight`.
    public var name: String
    public var shape: [Int]
    /// Offset in the flat vector (floats).
    public var offset: Int
    public var count: Int { shape.reduce(1, *) }
}

/// Names, shapes and flat offsets of every trainable tensor, in a fixed order:
///
///     codebook.weight [K, d]                                                   (LPC only)
///     prior.0.weight [d, d]   prior.0.bias [d]   prior.2.weight [K, d]   prior.2.bias [K]
///     posterior.0.weight [d, 2d]  posterior.0.bias [d]  posterior.2.weight [K, d]  posterior.2.bias [K]
///     head.down.weight [r, d]   (V)
///     head.up.weight   [d, r]   (U, zero-initialised)
///
/// The same names as `tools/lpc_torch.py`'s `state_dict()` (prior/posterior are nn.Sequential with
/// the GELU at index 1; head.down/up are bias-free nn.Linear), so checkpoints load on either side.
public struct ParameterLayout: Sendable, Equatable {
    public let specs: [ParameterSpec]
    public let totalCount: Int

    public init(config: LPCConfig) {
        let d = config.hiddenSize, K = config.codes, r = config.rank
        var shapes: [(String, [Int])] = []
        if config.useLPC {
            shapes += [
                ("codebook.weight", [K, d]),
                ("prior.0.weight", [d, d]), ("prior.0.bias", [d]), ("prior.2.weight", [K, d]), ("prior.2.bias", [K]),
                ("posterior.0.weight", [d, 2 * d]), ("posterior.0.bias", [d]),
                ("posterior.2.weight", [K, d]), ("posterior.2.bias", [K]),
            ]
        }
        shapes += [("head.down.weight", [r, d]), ("head.up.weight", [d, r])]
        var specs: [ParameterSpec] = []
        var offset = 0
        for (name, shape) in shapes {
            let spec = ParameterSpec(name: name, shape: shape, offset: offset)
            specs.append(spec)
            offset += spec.count
        }
        self.specs = specs
        totalCount = offset
    }

    public func spec(_ name: String) -> ParameterSpec? { specs.first { $0.name == name } }

    func offset(_ name: String) -> Int { spec(name)!.offset }
}

/// Offsets of each tensor (so the hot path never looks names up).
struct ParameterOffsets {
    var codebook = 0, prior0W = 0, prior0b = 0, prior2W = 0, prior2b = 0
    var post0W = 0, post0b = 0, post2W = 0, post2b = 0
    var down = 0, up = 0

    init(_ layout: ParameterLayout, useLPC: Bool) {
        if useLPC {
            codebook = layout.offset("codebook.weight")
            prior0W = layout.offset("prior.0.weight"); prior0b = layout.offset("prior.0.bias")
            prior2W = layout.offset("prior.2.weight"); prior2b = layout.offset("prior.2.bias")
            post0W = layout.offset("posterior.0.weight"); post0b = layout.offset("posterior.0.bias")
            post2W = layout.offset("posterior.2.weight"); post2b = layout.offset("posterior.2.bias")
        }
        down = layout.offset("head.down.weight")
        up = layout.offset("head.up.weight")
    }
}
