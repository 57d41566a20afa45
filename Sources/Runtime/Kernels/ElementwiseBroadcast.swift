import TensorCore

/// The broadcast of several operands to one output, walked in contiguous runs.
///
/// Axes of extent 1 are dropped and adjacent axes that every operand walks the same way
/// (contiguously, or not at all) are merged, so `[b,h,s,t] + [b,1,s,t]` becomes a loop over
/// `b·h` runs of `s·t` elements. Within a run each operand's step is 1 (it varies along the run)
/// or 0 (it is broadcast along it), which is all the inner loops need to know.
struct BroadcastRuns {
    /// Collapsed output extents, innermost last; at least one axis.
    let extents: [Int]
    /// Per operand, its element strides along `extents` (0 where broadcast).
    let strides: [[Int]]
    /// Elements per run (the innermost collapsed extent).
    let runLength: Int
    /// Per operand, its step along a run: 0 or 1.
    let runSteps: [Int]
    /// Number of runs (product of the outer extents); 0 for an empty output.
    let runCount: Int

    /// - Parameters:
    ///   - target: the output shape, already the broadcast of `sources`.
    ///   - sources: each operand's own shape.
    init(target: [Int], sources: [[Int]]) {
        let full = sources.map { Broadcast.strides(of: $0, to: target) }
        var extents: [Int] = []
        var strides: [[Int]] = Array(repeating: [], count: sources.count)
        for axis in 0..<target.count where target[axis] != 1 {
            if let last = extents.last,
               (0..<sources.count).allSatisfy({ strides[$0].last! == full[$0][axis] * target[axis] }) {
                // Merge with the previous axis: every operand continues it seamlessly.
                extents[extents.count - 1] = last * target[axis]
                for s in 0..<sources.count { strides[s][strides[s].count - 1] = full[s][axis] }
            } else {
                extents.append(target[axis])
                for s in 0..<sources.count { strides[s].append(full[s][axis]) }
            }
        }
        if extents.isEmpty {
            extents = [1]
            strides = Array(repeating: [0], count: sources.count)
        }
        self.extents = extents
        self.strides = strides
        runLength = extents[extents.count - 1]
        // A run's step: its innermost stride, which is 0 or 1 after merging.
        runSteps = strides.map { $0[$0.count - 1] == 0 ? 0 : 1 }
        runCount = runLength == 0 ? 0 : Tensor.elementCount(target) / runLength
    }

    /// Calls `body(offsets, outputOffset)` once per run, where `offsets[s]` is operand `s`'s
    /// flat element index at the start of the run and the output offset is `run · runLength`.
    func forEachRun(_ body: (UnsafeBufferPointer<Int>, Int) -> Void) {
        guard runCount > 0 else { return }
        let outerRank = extents.count - 1
        let operandCount = strides.count
        var position = [Int](repeating: 0, count: max(outerRank, 1))
        var offsets = [Int](repeating: 0, count: operandCount)
        offsets.withUnsafeMutableBufferPointer { offsets in
            for run in 0..<runCount {
                body(UnsafeBufferPointer(offsets), run * runLength)
                // Advance the odometer over the outer axes.
                var axis = outerRank - 1
                while axis >= 0 {
                    position[axis] += 1
                    for s in 0..<operandCount { offsets[s] += strides[s][axis] }
                    if position[axis] < extents[axis] { break }
                    for s in 0..<operandCount { offsets[s] -= strides[s][axis] * extents[axis] }
                    position[axis] = 0
                    axis -= 1
                }
            }
        }
    }
}

/// Elementwise loops over broadcast operands: the fast path (contiguous runs) and its reference
/// twin (one element at a time through `Broadcast.forEach`), which tests compare on many shapes.
enum ElementwiseLoops {
    /// `out[i] = f(a[i], b[i])` under broadcasting, walked in contiguous runs.
    /// - Parameters:
    ///   - a: any shape, element type `T`.
    ///   - b: any shape broadcastable with `a`, element type `T`.
    /// - Returns: the broadcast shape, element type `R`.
    @inline(__always)
    static func binary<T: TensorElement, R: TensorElement>(
        _ a: Tensor, _ b: Tensor, _: T.Type, _: R.Type, _ f: (T, T) -> R
    ) throws(KernelError) -> Tensor {
        let shape = try Broadcast.shape([a.shape, b.shape])
        let out = Tensor(uninitialized: R.dtype, shape: shape)
        let pa = a.pointer(T.self), pb = b.pointer(T.self), po = out.pointer(R.self)
        let count = out.count
        if count == 0 { return out }
        if a.shape == b.shape {
            for i in 0..<count { po[i] = f(pa[i], pb[i]) }
            return out
        }
        if b.count == 1 {
            let y = pb[0]
            for i in 0..<count { po[i] = f(pa[i], y) }
            return out
        }
        if a.count == 1 {
            let x = pa[0]
            for i in 0..<count { po[i] = f(x, pb[i]) }
            return out
        }
        let runs = BroadcastRuns(target: shape, sources: [a.shape, b.shape])
        let n = runs.runLength, stepA = runs.runSteps[0], stepB = runs.runSteps[1]
        runs.forEachRun { offsets, o in
            let x = pa + offsets[0], y = pb + offsets[1], z = po + o
            switch (stepA, stepB) {
            case (1, 1): for i in 0..<n { z[i] = f(x[i], y[i]) }
            case (1, _): let v = y[0]; for i in 0..<n { z[i] = f(x[i], v) }
            case (_, 1): let u = x[0]; for i in 0..<n { z[i] = f(u, y[i]) }
            default: let r = f(x[0], y[0]); for i in 0..<n { z[i] = r }
            }
        }
        return out
    }

    /// Reference twin of `binary`: the plain per-element broadcast loop.
    static func binaryReference<T: TensorElement, R: TensorElement>(
        _ a: Tensor, _ b: Tensor, _: T.Type, _: R.Type, _ f: (T, T) -> R
    ) throws(KernelError) -> Tensor {
        let shape = try Broadcast.shape([a.shape, b.shape])
        let out = Tensor(uninitialized: R.dtype, shape: shape)
        let pa = a.pointer(T.self), pb = b.pointer(T.self), po = out.pointer(R.self)
        Broadcast.forEach(target: shape, sources: [a.shape, b.shape]) { i, src in
            po[i] = f(pa[src[0]], pb[src[1]])
        }
        return out
    }

    /// `out[i] = f(x[i])`, same shape.
    @inline(__always)
    static func unary<T: TensorElement, R: TensorElement>(
        _ x: Tensor, _: T.Type, _: R.Type, _ f: (T) -> R
    ) -> Tensor {
        let out = Tensor(uninitialized: R.dtype, shape: x.shape)
        let px = x.pointer(T.self), po = out.pointer(R.self)
        for i in 0..<x.count { po[i] = f(px[i]) }
        return out
    }
}
