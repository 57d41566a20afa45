import TensorCore

/// MatMul (numpy matmul semantics) and Gemm. float32 goes through OpenBLAS sgemm/sgemv, float64
/// through dgemm, float16/bfloat16 through sgemm on float32 copies, int32/int64 through a loop
/// with wrapping arithmetic (as C++ runtimes overflow).
enum MatMulKernels {
    static func register(into table: inout [String: Kernel]) {
        table["MatMul"] = { ctx in
            [try matMul(try ctx.input(0), try ctx.input(1))]
        }
        table["Gemm"] = { ctx in
            let node = ctx.node
            return [try gemm(try ctx.input(0), try ctx.input(1), ctx.optionalInput(2),
                             alpha: node.float("alpha") ?? 1, beta: node.float("beta") ?? 1,
                             transA: (node.int("transA") ?? 0) != 0, transB: (node.int("transB") ?? 0) != 0)]
        }
    }

    static let matMulTypes: Set<DType> = [.float32, .float64, .float16, .bfloat16, .int32, .int64]

    // MARK: MatMul

    /// How an N-D matmul decomposes into per-batch [m,k]×[k,n] products.
    struct MatMulPlan: Equatable {
        var m: Int, k: Int, n: Int
        /// Broadcast batch shape of both operands (without the promoted 1-D dims).
        var batch: [Int]
        /// Final output shape, with the dims added by 1-D promotion removed.
        var outputShape: [Int]
        /// Batch shapes of A and B as stored.
        var aBatch: [Int], bBatch: [Int]

        var batchCount: Int { Tensor.elementCount(batch) }
    }

    /// Shapes for numpy matmul: a 1-D left operand is [1,K] and a 1-D right one [K,1], with that
    /// dim removed from the result; the leading dims broadcast.
    static func plan(_ a: [Int], _ b: [Int]) throws(KernelError) -> MatMulPlan {
        guard !a.isEmpty, !b.isEmpty else {
            throw KernelError("MatMul needs operands of rank ≥ 1; got shapes \(a) and \(b)")
        }
        let a2 = a.count == 1 ? [1, a[0]] : a
        let b2 = b.count == 1 ? [b[0], 1] : b
        let m = a2[a2.count - 2], k = a2[a2.count - 1]
        let kb = b2[b2.count - 2], n = b2[b2.count - 1]
        guard k == kb else {
            throw KernelError("MatMul inner dimensions differ: \(a) × \(b) (\(k) vs \(kb))")
        }
        let aBatch = Array(a2.dropLast(2)), bBatch = Array(b2.dropLast(2))
        let batch: [Int]
        do { batch = try Broadcast.shape([aBatch, bBatch]) } catch {
            throw KernelError("MatMul batch dimensions of \(a) and \(b) cannot be broadcast together")
        }
        var output = batch
        if a.count > 1 { output.append(m) }
        if b.count > 1 { output.append(n) }
        return MatMulPlan(m: m, k: k, n: n, batch: batch, outputShape: output, aBatch: aBatch, bBatch: bBatch)
    }

    /// Calls `body(outputMatrix, aMatrix, bMatrix)` with the matrix indices of every batch product.
    static func forEachBatch(_ plan: MatMulPlan, _ body: (Int, Int, Int) -> Void) {
        Broadcast.forEach(target: plan.batch, sources: [plan.aBatch, plan.bBatch]) { index, sources in
            body(index, sources[0], sources[1])
        }
    }

    /// numpy-style matmul of two tensors of the same dtype.
    static func matMul(_ a: Tensor /* [..., M, K] or [K] */, _ b: Tensor /* [..., K, N] or [K] */) throws(KernelError) -> Tensor {
        guard a.dtype == b.dtype else {
            throw KernelError("MatMul operands have different dtypes \(a.dtype) and \(b.dtype)")
        }
        guard matMulTypes.contains(a.dtype) else {
            throw KernelError("MatMul does not support dtype \(a.dtype)")
        }
        let plan = try plan(a.shape, b.shape)
        try MatMulBLAS.checkDimensions(plan.m, plan.n, plan.k, plan.batchCount * plan.m)
        switch a.dtype {
        case .float32:
            let result = Tensor(uninitialized: .float32, shape: plan.outputShape)
            matMulFloat(plan, a.pointer(Float.self), b.pointer(Float.self), result.pointer(Float.self))
            return result
        case .float64:
            let result = Tensor(uninitialized: .float64, shape: plan.outputShape)
            let pa = a.pointer(Double.self), pb = b.pointer(Double.self), pc = result.pointer(Double.self)
            let (m, k, n) = (plan.m, plan.k, plan.n)
            forEachBatch(plan) { c, ia, ib in
                MatMulBLAS.dgemm(m: m, n: n, k: k, a: pa + ia * m * k, lda: max(k, 1),
                                 b: pb + ib * k * n, ldb: max(n, 1), c: pc + c * m * n, ldc: max(n, 1))
            }
            return result
        case .int64:
            return matMulInteger(plan, a, b, Int64.self)
        case .int32:
            return matMulInteger(plan, a, b, Int32.self)
        default: // float16, bfloat16: compute in float32
            let fa = try Float32Staging.load(a, name: "MatMul input A")
            let fb = try Float32Staging.load(b, name: "MatMul input B")
            let result = Tensor(uninitialized: .float32, shape: plan.outputShape)
            withExtendedLifetime((fa, fb)) {
                matMulFloat(plan, fa.pointer(Float.self), fb.pointer(Float.self), result.pointer(Float.self))
            }
            return Float32Staging.store(result, as: a.dtype)
        }
    }

    /// The float32 fast path: one big sgemm when B has a single matrix (weights [in, out] applied
    /// to a batch of activations folds the batch into M), else one sgemm per batch product.
    static func matMulFloat(_ plan: MatMulPlan, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                            _ c: UnsafeMutablePointer<Float>) {
        let (m, k, n) = (plan.m, plan.k, plan.n)
        let aCount = Tensor.elementCount(plan.aBatch)
        if Tensor.elementCount(plan.bBatch) == 1 && aCount == plan.batchCount {
            MatMulBLAS.sgemm(m: aCount * m, n: n, k: k, a: a, lda: max(k, 1), b: b, ldb: max(n, 1),
                             c: c, ldc: max(n, 1))
            return
        }
        forEachBatch(plan) { ic, ia, ib in
            MatMulBLAS.sgemm(m: m, n: n, k: k, a: a + ia * m * k, lda: max(k, 1),
                             b: b + ib * k * n, ldb: max(n, 1), c: c + ic * m * n, ldc: max(n, 1))
        }
    }

    private static func matMulInteger<T: FixedWidthInteger & TensorElement>(
        _ plan: MatMulPlan, _ a: Tensor, _ b: Tensor, _: T.Type
    ) -> Tensor {
        let result = Tensor(uninitialized: T.dtype, shape: plan.outputShape)
        let pa = a.pointer(T.self), pb = b.pointer(T.self), pc = result.pointer(T.self)
        let (m, k, n) = (plan.m, plan.k, plan.n)
        forEachBatch(plan) { ic, ia, ib in
            integerGemm(m: m, n: n, k: k, a: pa + ia * m * k, b: pb + ib * k * n, c: pc + ic * m * n)
        }
        return result
    }

    /// c[m,n] = a[m,k] · b[k,n] with wrapping arithmetic, row-major; i-k-j order keeps rows streaming.
    static func integerGemm<T: FixedWidthInteger>(m: Int, n: Int, k: Int, a: UnsafePointer<T>,
                                                  b: UnsafePointer<T>, c: UnsafeMutablePointer<T>) {
        for i in 0..<m {
            let row = c + i * n
            row.update(repeating: 0, count: n)
            for p in 0..<k {
                let value = a[i * k + p]
                if value == 0 { continue }
                let bRow = b + p * n
                for j in 0..<n { row[j] &+= value &* bRow[j] }
            }
        }
    }

    // MARK: Gemm

    /// Y[M,N] = alpha · op(A) · op(B) + beta · C, with C unidirectionally broadcast to [M,N].
    static func gemm(_ a: Tensor /* [M,K] or [K,M] */, _ b: Tensor /* [K,N] or [N,K] */,
                     _ c: Tensor? /* broadcastable to [M,N] */,
                     alpha: Float, beta: Float, transA: Bool, transB: Bool) throws(KernelError) -> Tensor {
        guard a.rank == 2, b.rank == 2 else {
            throw KernelError("Gemm needs 2-D A and B; got shapes \(a.shape) and \(b.shape)")
        }
        guard a.dtype == b.dtype, c == nil || c?.dtype == a.dtype else {
            throw KernelError("Gemm operands have different dtypes \(a.dtype), \(b.dtype)\(c.map { ", \($0.dtype)" } ?? "")")
        }
        guard matMulTypes.contains(a.dtype) else {
            throw KernelError("Gemm does not support dtype \(a.dtype)")
        }
        let (m, k) = transA ? (a.shape[1], a.shape[0]) : (a.shape[0], a.shape[1])
        let (kb, n) = transB ? (b.shape[1], b.shape[0]) : (b.shape[0], b.shape[1])
        guard k == kb else {
            throw KernelError("Gemm inner dimensions differ: op(A) is [\(m), \(k)], op(B) is [\(kb), \(n)]")
        }
        if let c {
            guard c.rank <= 2, zip(c.shape.reversed(), [n, m]).allSatisfy({ $0 == $1 || $0 == 1 }) else {
                throw KernelError("Gemm C of shape \(c.shape) cannot be broadcast to [\(m), \(n)]")
            }
        }
        try MatMulBLAS.checkDimensions(m, n, k)
        let useC = c != nil && beta != 0
        switch a.dtype {
        case .float32, .float16, .bfloat16:
            let fa = try Float32Staging.load(a, name: "Gemm input A")
            let fb = try Float32Staging.load(b, name: "Gemm input B")
            let result = Tensor(uninitialized: .float32, shape: [m, n])
            let out = result.pointer(Float.self)
            if useC, let c {
                let cf = try Float32Staging.load(c, name: "Gemm input C")
                withExtendedLifetime(cf) { fillBroadcast(cf.pointer(Float.self), shape: c.shape, into: out, m: m, n: n) }
            }
            withExtendedLifetime((fa, fb)) {
                MatMulBLAS.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                                 a: fa.pointer(Float.self), lda: max(a.shape[1], 1),
                                 b: fb.pointer(Float.self), ldb: max(b.shape[1], 1),
                                 beta: useC ? beta : 0, c: out, ldc: max(n, 1))
            }
            return Float32Staging.store(result, as: a.dtype)
        case .float64:
            let result = Tensor(uninitialized: .float64, shape: [m, n])
            let out = result.pointer(Double.self)
            if useC, let c { fillBroadcast(c.pointer(Double.self), shape: c.shape, into: out, m: m, n: n) }
            MatMulBLAS.dgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: Double(alpha),
                             a: a.pointer(Double.self), lda: max(a.shape[1], 1),
                             b: b.pointer(Double.self), ldb: max(b.shape[1], 1),
                             beta: useC ? Double(beta) : 0, c: out, ldc: max(n, 1))
            return result
        case .int64:
            return gemmInteger(a, b, useC ? c : nil, alpha: alpha, beta: beta, transA: transA, transB: transB,
                               m: m, n: n, k: k, Int64.self)
        default:
            return gemmInteger(a, b, useC ? c : nil, alpha: alpha, beta: beta, transA: transA, transB: transB,
                               m: m, n: n, k: k, Int32.self)
        }
    }

    /// Writes C broadcast to [m, n] into `out`.
    private static func fillBroadcast<T>(_ c: UnsafePointer<T>, shape: [Int], into out: UnsafeMutablePointer<T>,
                                         m: Int, n: Int) {
        let full = [m, n]
        let strides = Broadcast.strides(of: shape, to: full)
        for i in 0..<m {
            for j in 0..<n { out[i * n + j] = c[i * strides[0] + j * strides[1]] }
        }
    }

    /// Integer Gemm: alpha and beta are truncated to integers, as onnxruntime does for integer types.
    private static func gemmInteger<T: FixedWidthInteger & TensorElement>(
        _ a: Tensor, _ b: Tensor, _ c: Tensor?, alpha: Float, beta: Float, transA: Bool, transB: Bool,
        m: Int, n: Int, k: Int, _: T.Type
    ) -> Tensor {
        let result = Tensor(uninitialized: T.dtype, shape: [m, n])
        let pa = a.pointer(T.self), pb = b.pointer(T.self), out = result.pointer(T.self)
        let intAlpha = T(clamping: Int64(exactly: alpha.rounded(.towardZero)) ?? 0)
        let intBeta = T(clamping: Int64(exactly: beta.rounded(.towardZero)) ?? 0)
        let aCols = a.shape[1], bCols = b.shape[1]
        let cStrides = c.map { Broadcast.strides(of: $0.shape, to: [m, n]) }
        let pc = c?.pointer(T.self)
        for i in 0..<m {
            for j in 0..<n {
                var sum: T = 0
                for p in 0..<k {
                    let av = transA ? pa[p * aCols + i] : pa[i * aCols + p]
                    let bv = transB ? pb[j * bCols + p] : pb[p * bCols + j]
                    sum &+= av &* bv
                }
                var value = intAlpha &* sum
                if let pc, let cStrides { value &+= intBeta &* pc[i * cStrides[0] + j * cStrides[1]] }
                out[i * n + j] = value
            }
        }
        return result
    }
}
