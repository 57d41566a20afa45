import CKernels
import Graph

/// The kernels the executor knows, by `domain:opType` ("" domain written as just `opType`).
/// Each kernel family registers itself from its own file.
public enum OpRegistry {
    public static let kernels: [String: Kernel] = {
        var table: [String: Kernel] = [:]
        ElementwiseKernels.register(into: &table)
        ReductionKernels.register(into: &table)
        ShapeKernels.register(into: &table)
        MatMulKernels.register(into: &table)
        TransformerKernels.register(into: &table)
        FusedKernels.register(into: &table)
        return table
    }()

    public static func kernel(for node: Node) -> Kernel? {
        kernels[node.qualifiedOpType]
    }

    /// Every op type the runtime can execute, sorted, for `lpc inspect` and docs.
    public static var supportedOps: [String] { kernels.keys.sorted() }
}
