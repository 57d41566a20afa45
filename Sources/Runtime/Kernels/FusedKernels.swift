import CBLAS
import CKernels
import Dispatch
import Graph
import TensorCore
#if canImport(Glibc)
import Glibc
#endif

/// Kernels of the fused `lpc` ops the graph passes create. Each has a reference twin in
/// `FusedReference.swift`, compared on swept and odd shapes in the tests.
enum FusedKernels {
    static func register(into table: inout [String: Kernel]) {
        table["lpc:RMSNorm"] = { ctx in [try rmsNorm(ctx.input(0, dtype: .float32), ctx.input(1, dtype: .float32),
                                                     epsilon: ctx.node.float("epsilon") ?? 1e-5)] }
        table["lpc:SiLU"] = { ctx in [try silu(ctx.input(0, dtype: .float32))] }
        table["lpc:SwiGLU"] = { ctx in [try swiGLU(ctx.input(0, dtype: .float32), ctx.input(1, dtype: .float32))] }
        table["lpc:MatMulNT"] = { ctx in [try scaled(matMulNT(ctx.input(0), ctx.input(1)), ctx, 2)] }
        table["lpc:MatMulKN"] = { ctx in [try scaled(matMulKN(ctx.input(0), ctx.input(1)), ctx, 2)] }
        table["lpc:MatMulKNGroup"] = { ctx in try matMulKNGroup(ctx) }
        table["lpc:GQAttention"] = { ctx in [try GQAttentionKernel.run(ctx)] }
        table["lpc:Rotary"] = { ctx in
            let x = try ctx.input(0, dtype: .float32)
            // split_heads: x's memory is [B, S, H, D] (input 3 is the absorbed Reshape's shape).
            let split = (ctx.node.int("split_heads") ?? 0) != 0
                ? try HeadLayout.split(x, shape: ctx.input(3), allowZero: (ctx.node.int("split_allowzero") ?? 0) != 0, name: "Rotary") : nil
            return [try rotary(x, ctx.input(1, dtype: .float32), ctx.input(2, dtype: .float32),
                               half: ctx.node.int("half") ?? 0, axis: ctx.node.int("axis") ?? -1, split: split)]
        }
        table["lpc:SymbolicValue"] = { ctx in [try symbolicValue(ctx)] }
        table["lpc:RepeatKVShape"] = { ctx in [try GQAttentionKernel.repeatShape(ctx)] }
        KVAppendKernel.register(into: &table)
        AddRMSNormKernel.register(into: &table)
    }

    // MARK: Rotary

    /// out = x·cos + rotate_half(x)·sin, rotate_half(x) = concat(-x[..., h:], x[..., :h]) on the
    /// last axis (h clamped to its size); cos and sin broadcast against x.
    /// With `split` = (B, S, H, D), x's memory is [B, S, H, D] and x is its [B, H, S, D] transpose:
    /// the rotation reads it in place and writes the [B, H, S, D] result (one pass, no copy first).
    static func rotary(_ x: Tensor, _ cos: Tensor, _ sin: Tensor, half: Int, axis: Int,
                       split: (b: Int, s: Int, h: Int, d: Int)? = nil) throws(KernelError) -> Tensor {
        if let result = rotaryHeadRows(x, cos, sin, half: half, axis: axis, split: split) { return result }
        let xShape = split.map { [$0.b, $0.h, $0.s, $0.d] } ?? x.shape
        var xStrides = Tensor.strides(of: xShape)
        if let split {
            let st = HeadLayout.splitStrides(split.b, split.s, split.h, split.d)
            xStrides = [st.batch, st.head, st.seq, 1]
        }
        guard xShape.count >= 1, axis == -1 || axis == xShape.count - 1 else {
            throw KernelError("Rotary: the rotated axis \(axis) is not the last axis of \(xShape)")
        }
        let rank = max(xShape.count, cos.rank, sin.rank)
        let shapes = [xShape, cos.shape, sin.shape].map { [Int](repeating: 1, count: rank - $0.count) + $0 }
        var outShape = [Int](repeating: 1, count: rank)
        for axis in 0..<rank {
            let sizes = Set(shapes.map { $0[axis] }).subtracting([1])
            guard sizes.count <= 1 else { throw KernelError("Rotary: shapes \(x.shape), \(cos.shape), \(sin.shape) do not broadcast") }
            outShape[axis] = sizes.first ?? 1
        }
        let d = outShape[rank - 1]
        guard shapes[0][rank - 1] == d else {
            throw KernelError("Rotary: x \(xShape) must span the rotated axis of \(outShape)")
        }
        let result = Tensor(uninitialized: .float32, shape: outShape)
        let h = min(max(half, 0), d)
        let paddedX = [Int](repeating: 0, count: rank - xStrides.count) + xStrides
        let strides = shapes.enumerated().map { (n, shape) -> [Int] in
            let s = n == 0 ? paddedX : Tensor.strides(of: shape)
            return (0..<rank).map { shape[$0] == 1 ? 0 : s[$0] }
        }
        let px = x.pointer(Float.self), pc = cos.pointer(Float.self), ps = sin.pointer(Float.self)
        let out = result.pointer(Float.self)
        let rows = d == 0 ? 0 : result.count / d
        let outerShape = Array(outShape.dropLast())
        let contiguous = strides.allSatisfy { $0[rank - 1] == 1 }
        // Rows in chunks over the pool (prefill: 1152 rows of 64 for Q); each chunk walks its rows'
        // offsets with an odometer started from the chunk's first row.
        let chunk = max(1, (1 << 14) / max(d, 1))
        let tasks = (rows + chunk - 1) / chunk
        RuntimeThreads.parallelFor(tasks) { task in
            let first = task * chunk, last = min(rows, first + chunk)
            var index = [Int](repeating: 0, count: rank - 1)
            var rest = first
            for a in stride(from: rank - 2, through: 0, by: -1) { index[a] = rest % outerShape[a]; rest /= outerShape[a] }
            for r in first..<last {
                var ox = 0, oc = 0, os = 0
                for a in 0..<(rank - 1) { ox += index[a] * strides[0][a]; oc += index[a] * strides[1][a]; os += index[a] * strides[2][a] }
                if contiguous {
                    lpc_rotate_half_row(px + ox, pc + oc, ps + os, out + r * d, Int64(d), Int64(h))
                } else {
                    rotaryRow(px + ox, pc + oc, ps + os, out + r * d, d: d, h: h,
                              strides: (strides[0][rank - 1], strides[1][rank - 1], strides[2][rank - 1]))
                }
                var a = rank - 2
                while a >= 0 { index[a] += 1; if index[a] < outerShape[a] { break }; index[a] = 0; a -= 1 }
            }
        }
        return result
    }

    /// `rotary` for a decode step's shapes without the general path's arrays and sets (it runs
    /// 60 times per step): x [B, H, S, D] (or its split layout), cos and sin of one shape
    /// [1 or B, 1, S, D] (leading 1s may be left out), at most one pool chunk of rows (the general
    /// path runs those inline too). The same row function, so the same bits. nil: the general path.
    private static func rotaryHeadRows(_ x: Tensor, _ cos: Tensor, _ sin: Tensor, half: Int, axis: Int,
                                       split: (b: Int, s: Int, h: Int, d: Int)?) -> Tensor? {
        let (b, h, s, d) = split.map { ($0.b, $0.h, $0.s, $0.d) }
            ?? (x.rank == 4 ? (x.shape[0], x.shape[1], x.shape[2], x.shape[3]) : (0, 0, 0, 0))
        guard d > 1, axis == -1 || axis == 3, b * h * s * d <= 1 << 14, cos.shape == sin.shape, cos.rank >= 2, cos.rank <= 4
        else { return nil }
        func cosDim(_ axis: Int) -> Int { let a = cos.rank - 4 + axis; return a >= 0 ? cos.shape[a] : 1 }
        let cosBatch = cosDim(0)
        guard cosDim(1) == 1, cosDim(2) == s, cosDim(3) == d, cosBatch == 1 || cosBatch == b else { return nil }
        let strides = split.map { HeadLayout.splitStrides($0.b, $0.s, $0.h, $0.d) } ?? (batch: h * s * d, head: s * d, seq: d)
        let result = Tensor(uninitialized: .float32, shape: [b, h, s, d])
        let px = x.pointer(Float.self), pc = cos.pointer(Float.self), ps = sin.pointer(Float.self)
        let out = result.pointer(Float.self)
        let rotated = Int64(min(max(half, 0), d))
        var row = 0
        for bi in 0..<b {
            for hi in 0..<h {
                for si in 0..<s {
                    let table = ((cosBatch == 1 ? 0 : bi) * s + si) * d
                    lpc_rotate_half_row(px + bi * strides.batch + hi * strides.head + si * strides.seq, pc + table, ps + table,
                                        out + row * d, Int64(d), rotated)
                    row += 1
                }
            }
        }
        return result
    }

    /// One output row of `rotary` with strided x/cos/sin along the rotated axis (0 = broadcast).
    @inline(__always)
    private static func rotaryRow(_ px: UnsafePointer<Float>, _ pc: UnsafePointer<Float>, _ ps: UnsafePointer<Float>,
                                  _ o: UnsafeMutablePointer<Float>, d: Int, h: Int, strides: (x: Int, c: Int, s: Int)) {
        for j in 0..<d {
            let rotated = j < d - h ? -px[(h + j) * strides.x] : px[(j - (d - h)) * strides.x]
            o[j] = px[j * strides.x] * pc[j * strides.c] + rotated * ps[j * strides.s]
        }
    }

    /// Reference twin of `rotary`: one element at a time through `Broadcast.forEach`.
    static func rotaryReference(_ x: Tensor, _ cos: Tensor, _ sin: Tensor, half: Int) throws(KernelError) -> Tensor {
        let shape = try Broadcast.shape([x.shape, cos.shape, sin.shape])
        let d = shape.last ?? 0, h = min(max(half, 0), d)
        let result = Tensor(uninitialized: .float32, shape: shape)
        let px = x.pointer(Float.self), pc = cos.pointer(Float.self), ps = sin.pointer(Float.self)
        let out = result.pointer(Float.self)
        Broadcast.forEach(target: shape, sources: [x.shape, cos.shape, sin.shape]) { i, src in
            let j = i % d, rowStart = src[0] - j // x spans the rotated axis, contiguously
            let rotated = j < d - h ? -px[rowStart + h + j] : px[rowStart + j - (d - h)]
            out[i] = px[src[0]] * pc[src[1]] + rotated * ps[src[2]]
        }
        return result
    }

    // MARK: SymbolicValue

    /// A small integer tensor whose elements are affine in the graph's named dims, read from the
    /// shapes of the inputs (attributes from `ShapePlumbingElimination`).
    static func symbolicValue(_ ctx: KernelContext) throws(KernelError) -> Tensor {
        let node = ctx.node
        guard let symInput = node.ints("sym_input"), let symAxis = node.ints("sym_axis"), let exprs = node.ints("exprs"),
              let shape = node.ints("shape"), let to = node.int("to") else { throw KernelError("SymbolicValue attributes missing") }
        var symbols = [Int](repeating: 0, count: symInput.count)
        for s in symInput.indices where symInput[s] >= 0 {
            let input = try ctx.input(symInput[s])
            guard symAxis[s] < input.rank else { throw KernelError("SymbolicValue: input #\(symInput[s]) has rank \(input.rank)") }
            symbols[s] = input.shape[symAxis[s]]
        }
        let width = symInput.count + 1
        let count = exprs.count / width
        var values = [Int64](repeating: 0, count: count)
        for e in 0..<count {
            var v = exprs[e * width]
            for s in 0..<symInput.count { v += exprs[e * width + 1 + s] * symbols[s] }
            values[e] = Int64(v)
        }
        if to == Int(DType.int32.rawValue) { return Tensor(values.map { Int32(truncatingIfNeeded: $0) }, shape: shape) }
        return Tensor(values, shape: shape)
    }

    // MARK: RMSNorm

    /// y[..., D] = w[D] · x · 1/sqrt(mean(x²) + ε) over the last axis.
    static func rmsNorm(_ x: Tensor /* [..., D] */, _ w: Tensor /* [D] */, epsilon: Float) throws(KernelError) -> Tensor {
        guard let d = x.shape.last, w.rank == 1, w.shape[0] == d else {
            throw KernelError("RMSNorm weight of shape \(w.shape) does not match input \(x.shape)")
        }
        let result = Tensor(uninitialized: .float32, shape: x.shape)
        let rows = d == 0 ? 0 : x.count / d
        let px = x.pointer(Float.self), pw = w.pointer(Float.self), py = result.pointer(Float.self)
        // Rows in chunks over the pool; the sum of squares stays `SIMDMath`'s (same bits as before).
        let chunk = max(1, (1 << 14) / max(d, 1))
        RuntimeThreads.parallelFor((rows + chunk - 1) / chunk) { t in
            for r in (t * chunk)..<min(rows, (t + 1) * chunk) {
                let row = px + r * d
                let mean = SIMDMath.sumOfSquares(row, d) / Float(d)
                let inv = 1 / (mean + epsilon).squareRoot()
                lpc_scale_by_weight_row(row, pw, inv, py + r * d, Int64(d))
            }
        }
        return result
    }

    // MARK: SiLU, SwiGLU

    static func silu(_ g: Tensor) throws(KernelError) -> Tensor {
        let result = Tensor(uninitialized: .float32, shape: g.shape)
        let pg = g.pointer(Float.self), out = result.pointer(Float.self)
        for i in 0..<g.count { out[i] = pg[i] * Unary.sigmoid(pg[i]) }
        return result
    }

    /// silu(g) · u; broadcasting as Mul does when the shapes differ.
    static func swiGLU(_ g: Tensor, _ u: Tensor) throws(KernelError) -> Tensor {
        guard g.shape == u.shape else { return try Arithmetic.apply(.mul, silu(g), u) }
        let result = Tensor(uninitialized: .float32, shape: g.shape)
        let pg = g.pointer(Float.self), pu = u.pointer(Float.self), out = result.pointer(Float.self)
        // C kernel (vector exp); prefill-sized inputs in chunks over the pool.
        let count = g.count, chunk = 1 << 14
        let tasks = (count + chunk - 1) / chunk
        RuntimeThreads.parallelFor(tasks) { t in
            let start = t * chunk
            lpc_swiglu(pg + start, pu + start, out + start, Int64(min(chunk, count - start)))
        }
        return result
    }

    // MARK: MatMulKN

    /// y[..., N] = x[..., K] · W[K, N] (a MatMul with constant 2-D weights; f16, bf16, i16 and f24 weights allowed).
    static func matMulKN(_ x: Tensor, _ w: Tensor) throws(KernelError) -> Tensor {
        guard x.dtype == .float32, w.rank == 2, x.rank >= 1, let k = x.shape.last, w.shape[0] == k else {
            throw KernelError("MatMul needs float32 x[..., K] and W[K, N]; got \(x.dtype)\(x.shape) and \(w.dtype)\(w.shape)")
        }
        let n = w.shape[1]
        var shape = x.shape
        if x.rank == 1 { shape = [n] } else { shape[shape.count - 1] = n }
        let result = Tensor(uninitialized: .float32, shape: shape)
        let rows = x.rank == 1 ? 1 : Tensor.elementCount(Array(x.shape.dropLast()))
        try MatMulBLAS.checkDimensions(rows, n, k)
        let px = x.pointer(Float.self), py = result.pointer(Float.self)
        switch w.dtype {
        case .float32:
            if rows <= Gemv.maxRows {
                lpc_gemv_kn_f32(px, w.pointer(Float.self), py, Int64(rows), Int64(n), Int64(k))
            } else {
                // Prefill: our AVX-512 sgemm on the pool (OpenBLAS panels without AVX-512; MatMulBLAS.Threading).
                MatMulBLAS.sgemmPooled(m: rows, n: n, k: k, a: px, lda: max(k, 1), b: w.pointer(Float.self), ldb: max(n, 1), c: py, ldc: max(n, 1))
            }
        case .float16:
            let pw = w.raw.assumingMemoryBound(to: UInt16.self)
            if rows <= Gemv.maxRows {
                lpc_gemv_kn_f16(px, pw, py, Int64(rows), Int64(n), Int64(k))
            } else {
                // Prefill: widen the weights once per call, one full-depth sgemm (MatMulBLAS).
                MatMulBLAS.sgemmHalfB(m: rows, n: n, k: k, a: px, lda: max(k, 1), b: pw, c: py, ldc: max(n, 1))
            }
        case .bfloat16:
            let pw = w.raw.assumingMemoryBound(to: UInt16.self)
            if rows <= Gemv.maxRows {
                lpc_gemv_kn_bf16(px, pw, py, Int64(rows), Int64(n), Int64(k))
            } else {
                MatMulBLAS.sgemmHalfB(m: rows, n: n, k: k, a: px, lda: max(k, 1), b: pw, c: py, ldc: max(n, 1), widen: lpc_bf16_to_f32_n)
            }
        case .int16: // `--weights i16`: unscaled integers; the node applies its per-column scales after (`scaled`)
            let pw = w.raw.assumingMemoryBound(to: UInt16.self)
            if rows <= Gemv.maxRows {
                lpc_gemv_kn_i16(px, pw, py, Int64(rows), Int64(n), Int64(k))
            } else {
                MatMulBLAS.sgemmHalfB(m: rows, n: n, k: k, a: px, lda: max(k, 1), b: pw, c: py, ldc: max(n, 1), widen: lpc_i16_to_f32_n)
            }
        case .float24: // `--weights f24`: exact float32 values in 3 bytes; the same sums as float32
            let pw = w.raw.assumingMemoryBound(to: lpc_f24.self)
            if rows <= Gemv.maxRows {
                lpc_gemv_kn_f24(px, pw, py, Int64(rows), Int64(n), Int64(k))
            } else {
                MatMulBLAS.sgemmF24B(m: rows, n: n, k: k, a: px, lda: max(k, 1), b: pw, c: py, ldc: max(n, 1))
            }
        default:
            throw KernelError("MatMul weights must be float32, float16, bfloat16, int16 or float24, got \(w.dtype)")
        }
        return result
    }

    /// `--weights i16` (WeightConversion): y[..., j] *= scales[j] when the node has a float32
    /// scales input [N] at `index`, in place (y is the product's fresh result). Returns y.
    static func scaled(_ y: Tensor, _ ctx: KernelContext, _ index: Int) throws(KernelError) -> Tensor {
        guard ctx.inputs.count > index else { return y }
        try scaleColumns(y, ctx.input(index, dtype: .float32))
        return y
    }

    static func scaleColumns(_ y: Tensor, _ scales: Tensor) throws(KernelError) {
        guard y.dtype == .float32, let n = y.shape.last, scales.rank == 1, scales.shape[0] == n else {
            throw KernelError("product scales must be float32 [N] for a product [..., N]; got \(scales.dtype)\(scales.shape) for \(y.shape)")
        }
        guard n > 0 else { return }
        let rows = y.count / n, py = y.pointer(Float.self), ps = scales.pointer(Float.self)
        // The RMSNorm weight kernel with a factor of 1: scales[j] · (y[j] · 1), the same bits as y[j] · scales[j].
        for r in 0..<rows { lpc_scale_by_weight_row(py + r * n, ps, 1, py + r * n, Int64(n)) }
    }

    // MARK: MatMulKNGroup

    /// (y1, …, yp) = (x · W1, …, x · Wp): x [..., K], Wi [K, Ni] of one dtype. Decode rows run as
    /// one grouped gemv; more rows run each product as `matMulKN` does. With `splits` = [N1, …, Np]
    /// the weights are one float32 W [K, ΣNi] holding the parts side by side (MatMulGrouping).
    static func matMulKNGroup(_ ctx: KernelContext) throws(KernelError) -> [Tensor] {
        if let splits = ctx.node.ints("splits") { return try matMulKNSideBySide(ctx.input(0), ctx.input(1), splits: splits) }
        // `scaled = 1` (int16 weights, MatMulGrouping): inputs x, W1…Wp, scales1…scalesp.
        guard ctx.node.int("scaled") ?? 0 == 0 else {
            let parts = (ctx.inputs.count - 1) / 2
            guard parts > 0, ctx.inputs.count == 2 * parts + 1 else {
                throw KernelError("MatMulKNGroup with scaled = 1 needs x, p weights and p scales; got \(ctx.inputs.count) inputs")
            }
            let results = try matMulKNGroup(ctx.input(0), (1...parts).map { i throws(KernelError) in try ctx.input(i) })
            for (p, y) in results.enumerated() { try scaleColumns(y, ctx.input(1 + parts + p, dtype: .float32)) }
            return results
        }
        return try matMulKNGroup(ctx.input(0), (1..<max(ctx.inputs.count, 1)).map { i throws(KernelError) in try ctx.input(i) })
    }

    /// (y1, …, yp) = (x · W1, …, x · Wp) for weights of one dtype (see `matMulKNGroup(_:)`).
    static func matMulKNGroup(_ x: Tensor, _ weights: [Tensor]) throws(KernelError) -> [Tensor] {
        guard x.dtype == .float32, x.rank >= 1, let k = x.shape.last, let first = weights.first,
              weights.allSatisfy({ $0.rank == 2 && $0.shape[0] == k && $0.dtype == first.dtype }),
              [.float32, .float16, .bfloat16, .int16, .float24].contains(first.dtype) else {
            throw KernelError("MatMulKNGroup needs float32 x[..., K] and weights [K, N] of one dtype (float32, float16, bfloat16, int16 or float24); got \(x.dtype)\(x.shape) and \(weights.map { "\($0.dtype)\($0.shape)" })")
        }
        let rows = x.rank == 1 ? 1 : Tensor.elementCount(Array(x.shape.dropLast()))
        guard rows <= Gemv.maxRows else {
            let f24 = first.dtype == .float24 && MatMulBLAS.threading == .kernel
            guard first.dtype == .float32 || f24 else { return try weights.map { w throws(KernelError) in try matMulKN(x, w) } }
            // Prefill: all products' tasks in one pool run (MatMulBLAS.sgemmPooledGroup: A packed once, then column strips).
            let results = productOutputs(x, widths: weights.map { $0.shape[1] })
            for w in weights { try MatMulBLAS.checkDimensions(rows, w.shape[1], k) }
            let products = zip(weights, results).map { w, y in
                MatMulBLAS.PooledProduct(b: f24 ? nil : w.pointer(Float.self), b24: f24 ? w.raw.assumingMemoryBound(to: lpc_f24.self) : nil,
                                         ldb: max(w.shape[1], 1), n: w.shape[1], c: y.pointer(Float.self), ldc: max(w.shape[1], 1))
            }
            MatMulBLAS.sgemmPooledGroup(m: rows, k: k, a: x.pointer(Float.self), lda: max(k, 1), products: products)
            return results
        }
        let results = productOutputs(x, widths: weights.map { $0.shape[1] })
        for w in weights { try MatMulBLAS.checkDimensions(rows, w.shape[1], k) }
        let sizes = weights.map { Int64($0.shape[1]) }
        let outputs: [UnsafeMutablePointer<Float>?] = results.map { $0.pointer(Float.self) }
        if first.dtype == .float32 {
            let pointers: [UnsafePointer<Float>?] = weights.map { UnsafePointer($0.pointer(Float.self)) }
            lpc_gemv_kn_multi_f32(x.pointer(Float.self), pointers, outputs, sizes, Int64(weights.count), Int64(rows), Int64(k))
        } else if first.dtype == .float24 {
            let pointers: [UnsafePointer<lpc_f24>?] = weights.map { UnsafePointer($0.raw.assumingMemoryBound(to: lpc_f24.self)) }
            lpc_gemv_kn_multi_f24(x.pointer(Float.self), pointers, outputs, sizes, Int64(weights.count), Int64(rows), Int64(k))
        } else {
            let pointers: [UnsafePointer<UInt16>?] = weights.map { UnsafePointer($0.raw.assumingMemoryBound(to: UInt16.self)) }
            if first.dtype == .float16 {
                lpc_gemv_kn_multi_f16(x.pointer(Float.self), pointers, outputs, sizes, Int64(weights.count), Int64(rows), Int64(k))
            } else if first.dtype == .int16 {
                lpc_gemv_kn_multi_i16(x.pointer(Float.self), pointers, outputs, sizes, Int64(weights.count), Int64(rows), Int64(k))
            } else {
                lpc_gemv_kn_multi_bf16(x.pointer(Float.self), pointers, outputs, sizes, Int64(weights.count), Int64(rows), Int64(k))
            }
        }
        return results
    }

    /// One float32 output [..., N] per width N for products of x [..., K] (x's last axis replaced).
    static func productOutputs(_ x: Tensor, widths: [Int]) -> [Tensor] {
        widths.map { n in
            var shape = x.shape
            shape[shape.count - 1] = n
            return Tensor(uninitialized: .float32, shape: shape)
        }
    }

    /// x [..., K] · W [K, ΣNi] cut into the column blocks `splits`: decode rows run one gemv over
    /// the whole of W (one matrix streamed in equal K-row blocks) and copy each part's columns
    /// out; prefill rows run each part's column strips in one pool run, reading W in place with its
    /// full row stride (a column window of W per part).
    static func matMulKNSideBySide(_ x: Tensor, _ w: Tensor, splits: [Int]) throws(KernelError) -> [Tensor] {
        guard x.dtype == .float32, w.dtype == .float32 || w.dtype == .float24, x.rank >= 1, w.rank == 2, let k = x.shape.last,
              w.shape[0] == k, splits.allSatisfy({ $0 >= 0 }), splits.reduce(0, +) == w.shape[1] else {
            throw KernelError("MatMulKNGroup with splits \(splits) needs float32 x[..., K] and one float32 or float24 weight [K, sum of splits]; got \(x.dtype)\(x.shape) and \(w.dtype)\(w.shape)")
        }
        let width = w.shape[1]
        let rows = x.rank == 1 ? 1 : Tensor.elementCount(Array(x.shape.dropLast()))
        let results = productOutputs(x, widths: splits)
        for n in splits { try MatMulBLAS.checkDimensions(rows, n, k) }
        var offsets: [Int] = [], column = 0
        for n in splits { offsets.append(column); column += n }
        if rows <= Gemv.maxRows {
            let joined = try matMulKN(x, w) // [..., width]
            let source = joined.pointer(Float.self)
            for (p, y) in results.enumerated() where splits[p] > 0 {
                let destination = y.pointer(Float.self)
                for row in 0..<rows {
                    (destination + row * splits[p]).update(from: source + row * width + offsets[p], count: splits[p])
                }
            }
            return results
        }
        // Each part a column window of W (float32, or f24: our sgemm widens B's chunks as it copies them).
        func run(_ b: UnsafePointer<Float>?, _ b24: UnsafePointer<lpc_f24>?) {
            let products = zip(results, offsets).enumerated().compactMap { p, pair -> MatMulBLAS.PooledProduct? in
                guard splits[p] > 0 else { return nil }
                return MatMulBLAS.PooledProduct(b: b.map { $0 + pair.1 }, b24: b24, b24Column: pair.1, ldb: width, n: splits[p],
                                                c: pair.0.pointer(Float.self), ldc: splits[p])
            }
            MatMulBLAS.sgemmPooledGroup(m: rows, k: k, a: x.pointer(Float.self), lda: max(k, 1), products: products)
        }
        if w.dtype == .float32 {
            run(w.pointer(Float.self), nil)
        } else if MatMulBLAS.threading == .kernel {
            run(nil, w.raw.assumingMemoryBound(to: lpc_f24.self))
        } else { // f24 without our sgemm: widened once per call into the reused scratch, then the same products
            let packed = w.raw.assumingMemoryBound(to: lpc_f24.self)
            HalfScratch.shared.with(count: w.count) { wide in
                RuntimeThreads.parallelFor((k + 63) / 64) { task in
                    let r0 = task * 64, r1 = min(k, r0 + 64)
                    lpc_f24_tiles_to_f32(packed, wide, Int64(k), Int64(width), Int64(r0), Int64(r1))
                }
                run(wide, nil)
            }
        }
        return results
    }

    // MARK: MatMulNT

    /// y[..., N] = x[..., K] · W[N, K]ᵀ (W as stored by a Transpose-fed MatMul; f16 and bf16 weights allowed).
    static func matMulNT(_ x: Tensor, _ w: Tensor) throws(KernelError) -> Tensor {
        guard x.dtype == .float32, w.rank == 2, let k = x.shape.last, w.shape[1] == k else {
            throw KernelError("MatMulNT needs float32 x[..., K] and W[N, K]; got \(x.dtype)\(x.shape) and \(w.dtype)\(w.shape)")
        }
        let n = w.shape[0]
        var shape = x.shape
        shape[shape.count - 1] = n
        let result = Tensor(uninitialized: .float32, shape: shape)
        let rows = x.rank == 1 ? 1 : Tensor.elementCount(Array(x.shape.dropLast()))
        try MatMulBLAS.checkDimensions(rows, n, k)
        switch w.dtype {
        case .float32:
            Gemv.matMulNT(x.pointer(Float.self), w.pointer(Float.self), result.pointer(Float.self), m: rows, n: n, k: k)
        case .float16:
            Gemv.matMulNTHalf(x.pointer(Float.self), w.raw.assumingMemoryBound(to: UInt16.self), result.pointer(Float.self),
                              m: rows, n: n, k: k)
        case .bfloat16:
            let pw = w.raw.assumingMemoryBound(to: UInt16.self)
            if rows <= Gemv.maxRows {
                lpc_gemv_bf16(x.pointer(Float.self), pw, result.pointer(Float.self), Int64(rows), Int64(n), Int64(k))
            } else {
                MatMulBLAS.sgemmHalfNT(x.pointer(Float.self), pw, result.pointer(Float.self), m: rows, n: n, k: k, widen: lpc_bf16_to_f32_n)
            }
        case .int16: // `--weights i16`: unscaled integers; the node applies its per-row scales after (`scaled`)
            let pw = w.raw.assumingMemoryBound(to: UInt16.self)
            if rows <= Gemv.maxRows {
                lpc_gemv_i16(x.pointer(Float.self), pw, result.pointer(Float.self), Int64(rows), Int64(n), Int64(k))
            } else {
                MatMulBLAS.sgemmHalfNT(x.pointer(Float.self), pw, result.pointer(Float.self), m: rows, n: n, k: k, widen: lpc_i16_to_f32_n)
            }
        default:
            throw KernelError("MatMulNT weights must be float32, float16, bfloat16 or int16, got \(w.dtype)")
        }
        return result
    }
}

/// Small SIMD helpers (written as `a * b + c` so they vectorise without -march flags).
enum SIMDMath {
    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
        var i = 0
        let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
        while i + 16 <= n {
            acc0 = acc0 + ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) * rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            acc1 = acc1 + ra.loadUnaligned(fromByteOffset: i * 4 + 32, as: SIMD8<Float>.self) * rb.loadUnaligned(fromByteOffset: i * 4 + 32, as: SIMD8<Float>.self)
            i += 16
        }
        var sum = (acc0 + acc1).sum()
        while i < n { sum += a[i] * b[i]; i += 1 }
        return sum
    }

    @inline(__always)
    static func sumOfSquares(_ a: UnsafePointer<Float>, _ n: Int) -> Float {
        dot(a, a, n)
    }

    /// y[n] += alpha · x[n]
    @inline(__always)
    static func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        let a8 = SIMD8<Float>(repeating: alpha)
        let rx = UnsafeRawPointer(x), ry = UnsafeMutableRawPointer(y)
        while i + 8 <= n {
            let v = ry.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) + a8 * rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            ry.storeBytes(of: v, toByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
        while i < n { y[i] += alpha * x[i]; i += 1 }
    }
}

/// The thread count our kernels use, kept in step with OpenBLAS's.
public enum RuntimeThreads {
    /// Debian's OpenBLAS 0.3.21 does not know Zen 4 and runs its SSE3 kernels; this asks it for its
    /// AVX-512/AVX2 ones instead (unless OPENBLAS_CORETYPE is set) and returns the core name in use.
    /// Call it once, at process start, before any BLAS call: switching later would make the same
    /// computation round differently before and after. The CLI does; tests and libraries do not
    /// (results there stay those of the machine's default OpenBLAS kernels).
    @discardableResult
    public static func selectOpenBLASKernels() -> String {
        String(cString: lpc_tune_openblas())
    }

    nonisolated(unsafe) private static var configured = false

    /// How evenly the pool's jobs split since the last `resetPoolStatistics()` (`lpc_pool_stats`).
    public struct PoolStatistics: Sendable {
        public var jobs = 0, callerTasks = 0, workerTasks = 0
        /// Seconds on tasks (the workers' summed), and the caller's wait at job ends for workers
        /// still running a task: time one thread idles while another finishes.
        public var callerTaskSeconds = 0.0, workerTaskSeconds = 0.0, callerWaitSeconds = 0.0

        public init() {}
    }

    public static func poolStatistics() -> PoolStatistics {
        var raw = lpc_pool_stats()
        lpc_pool_stats_read(&raw)
        var stats = PoolStatistics()
        (stats.jobs, stats.callerTasks, stats.workerTasks) = (Int(raw.jobs), Int(raw.caller_tasks), Int(raw.worker_tasks))
        stats.callerTaskSeconds = raw.caller_task_seconds
        stats.workerTaskSeconds = raw.worker_task_seconds
        stats.callerWaitSeconds = raw.caller_wait_seconds
        return stats
    }

    public static func resetPoolStatistics() { lpc_pool_stats_reset() }

    /// Sets our pool's thread count and OpenBLAS's (DESIGN.md §5: one budget for both).
    public static func setThreadCount(_ threads: Int) {
        let count = max(1, threads)
        lpc_set_threads(Int32(count))
        openblas_set_num_threads(Int32(count))
        configured = true
    }

    public static var threadCount: Int {
        if !configured { setThreadCount(max(1, Int(openblas_get_num_threads()))) }
        return Int(lpc_get_threads())
    }

    /// Runs body(i) for i in 0..<tasks on the pool (serially for one task).
    static func parallelFor(_ tasks: Int, _ body: (Int) -> Void) {
        if tasks <= 1 || threadCount <= 1 {
            for i in 0..<tasks { body(i) }
            return
        }
        withoutActuallyEscaping(body) { body in
            var box = body
            withUnsafeMutablePointer(to: &box) { pointer in
                lpc_parallel_for(Int64(tasks), { ctx, task in
                    ctx!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(Int(task))
                }, pointer)
            }
        }
    }
}

/// Matrix-vector products for decode (few rows of x against weights stored [N, K]).
enum Gemv {
    /// Rows of x at or below this go to our kernel; more go to OpenBLAS sgemm.
    static let maxRows = 8

    static func matMulNT(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                         m: Int, n: Int, k: Int) {
        if m <= maxRows {
            lpc_gemv_f32(x, w, y, Int64(m), Int64(n), Int64(k))
        } else {
            MatMulBLAS.sgemmPooled(transB: true, m: m, n: n, k: k, a: x, lda: max(k, 1), b: w, ldb: max(k, 1), c: y, ldc: max(n, 1))
        }
    }

    static func matMulNTHalf(_ x: UnsafePointer<Float>, _ w: UnsafePointer<UInt16>, _ y: UnsafeMutablePointer<Float>,
                             m: Int, n: Int, k: Int) {
        if m <= maxRows {
            lpc_gemv_f16(x, w, y, Int64(m), Int64(n), Int64(k))
            return
        }
        MatMulBLAS.sgemmHalfNT(x, w, y, m: m, n: n, k: k) // prefill: widened blocks, sgemm
    }
}

struct UnsafeSendableBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// Persistent state a session keeps between runs for stateful kernels.
public final class ExecutionState: @unchecked Sendable {
    /// The in-place KV cache of the current run, when the caller gave one.
    public internal(set) var kvStore: KVStore?
    public init() {}
}
