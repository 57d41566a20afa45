import Graph
import TensorCore

/// Trilu: keeps the upper (j - i >= k) or lower (j - i <= k) triangle of each trailing matrix
/// and zeroes the rest; works on raw bytes (zero is all-zero bytes in every dtype).
enum ShapeTriluKernels {
    static func register(into table: inout [String: Kernel]) {
        table["Trilu"] = trilu
    }

    /// input: [batch…, N, M], k: optional int64 scalar (default 0) → [batch…, N, M].
    @Sendable static func trilu(_ ctx: KernelContext) throws -> [Tensor] {
        let input = try ctx.input(0)
        guard input.rank >= 2 else { throw KernelError("Trilu input must have rank >= 2, got \(input.shape)") }
        let rawK = try ctx.optionalInput(1).map { t throws(KernelError) in try ShapeSupport.integerScalar(t, "Trilu k") } ?? 0
        let upper = (ctx.node.int("upper") ?? 1) != 0
        let rows = input.shape[input.rank - 2], columns = input.shape[input.rank - 1]
        // Clamping k to ±(rows + columns) keeps i + k from overflowing and changes nothing.
        let bound = rows + columns + 1
        let k = min(max(rawK, -bound), bound)
        let result = input.copy()
        guard result.count > 0 else { return [result] }
        let elementSize = input.dtype.size
        let rowBytes = columns * elementSize
        let matrices = input.count / (rows * columns)
        for m in 0..<matrices {
            for i in 0..<rows {
                let row = result.raw + (m * rows + i) * rowBytes
                // Columns to zero in this row.
                let (from, to) = upper ? (0, min(max(i + k, 0), columns)) : (min(max(i + k + 1, 0), columns), columns)
                if to > from {
                    (row + from * elementSize).initializeMemory(as: UInt8.self, repeating: 0, count: (to - from) * elementSize)
                }
            }
        }
        return [result]
    }
}
