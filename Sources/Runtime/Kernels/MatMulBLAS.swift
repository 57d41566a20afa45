import CBLAS
import CKernels
import Foundation

/// Thin row-major wrappers over OpenBLAS. They skip empty products (BLAS rejects zero leading
/// dimensions), handle K = 0 (the product is zero), and send single rows or columns to gemv,
/// which is what decode-time matmuls are.
enum MatMulBLAS {
    /// Largest dimension OpenBLAS's 32-bit `blasint` interface accepts.
    static let maxDimension = Int(Int32.max)

    /// Throws unless every dimension fits the BLAS integer type.
    static func checkDimensions(_ dims: Int...) throws(KernelError) {
        for dim in dims where dim > maxDimension {
            throw KernelError("dimension \(dim) is too large for BLAS (limit \(maxDimension))")
        }
    }

    /// C[m,n] = alpha · op(A)[m,k] · op(B)[k,n] + beta · C, all row-major with leading dimensions.
    /// `beta == 0` never reads C.
    static func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                      alpha: Float = 1,
                      a: UnsafePointer<Float>, lda: Int,
                      b: UnsafePointer<Float>, ldb: Int,
                      beta: Float = 0,
                      c: UnsafeMutablePointer<Float>, ldc: Int) {
        if m == 0 || n == 0 { return }
        if k == 0 {
            scale(c, rows: m, cols: n, ld: ldc, by: beta)
            return
        }
        let opA = transA ? CblasTrans : CblasNoTrans
        let opB = transB ? CblasTrans : CblasNoTrans
        if m == 1 {
            // y[n] = alpha · op(B)ᵀ · a + beta · y; a is a row (stride 1) or, transposed, a column.
            let incA = Int32(transA ? lda : 1)
            if transB {
                cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(n), Int32(k), alpha, b, Int32(ldb),
                            a, incA, beta, c, 1)
            } else {
                cblas_sgemv(CblasRowMajor, CblasTrans, Int32(k), Int32(n), alpha, b, Int32(ldb),
                            a, incA, beta, c, 1)
            }
            return
        }
        if n == 1 {
            // y[m] = alpha · op(A) · b + beta · y; b is a column (stride ldb) or, transposed, a row.
            let incB = Int32(transB ? 1 : ldb)
            if transA {
                cblas_sgemv(CblasRowMajor, CblasTrans, Int32(k), Int32(m), alpha, a, Int32(lda),
                            b, incB, beta, c, Int32(ldc))
            } else {
                cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(m), Int32(k), alpha, a, Int32(lda),
                            b, incB, beta, c, Int32(ldc))
            }
            return
        }
        cblas_sgemm(CblasRowMajor, opA, opB, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda),
                    b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// How prefill products with constant weights (`sgemmPooled`, `sgemmPooledGroup`) are computed.
    /// `kernel`: our AVX-512 sgemm (`lpc_sgemm_f32`) on column strips (and row blocks) over our pool,
    /// the default where AVX-512 is present (transposed weights still take `pool`); `pool`: column
    /// panels run as single-threaded OpenBLAS sgemms over our pool; `openblas`: one OpenBLAS call
    /// on its own threads. `LPC_PREFILL_SGEMM=kernel|pool|openblas` chooses (for side-by-side runs).
    enum Threading: String { case kernel, pool, openblas }

    /// `kernel` where AVX-512 is present, else `pool`, unless `LPC_PREFILL_SGEMM` says otherwise.
    nonisolated(unsafe) static var threading: Threading = {
        let chosen = getenv("LPC_PREFILL_SGEMM").flatMap { Threading(rawValue: String(cString: $0)) }
        if chosen == .kernel || chosen == nil { return lpc_sgemm_available() != 0 ? .kernel : .pool }
        return chosen!
    }()

    /// Products below this many multiply-adds run as one OpenBLAS sgemm on the `pool` path:
    /// splitting would not pay, and OpenBLAS 0.3.21 sends row-major, untransposed, alpha 1, beta 0
    /// products below it (its `sgemm_direct_performant` bound, 28·512·512) to a direct AVX-512
    /// kernel that rounds differently, so results stay those of the unsplit call.
    static let minPooledWork = 28 * 512 * 512

    /// `sgemm` (no transA, alpha 1, beta 0) for prefill, spread over our pool (see `Threading`).
    static func sgemmPooled(transB: Bool = false, m: Int, n: Int, k: Int,
                            a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                            c: UnsafeMutablePointer<Float>, ldc: Int, mode: Threading = threading) {
        sgemmPooledGroup(transB: transB, m: m, k: k, a: a, lda: lda, products: [PooledProduct(b: b, ldb: ldb, n: n, c: c, ldc: ldc)],
                         mode: mode)
    }

    /// One product of a group sharing A: C[m, n] = A[m, k] · op(B), op(B) [k, n]. B is float32, or
    /// f24 (`F24Packing`; the `kernel` path only, which widens it while copying its chunks).
    struct PooledProduct {
        /// One of b (float32, row-major, row stride ldb) and b24 (f24 tiles [k, ldb], lpc_f24.h: the
        /// product's columns start at column b24Column; a tiled matrix cannot be offset by pointer).
        var b: UnsafePointer<Float>?, b24: UnsafePointer<lpc_f24>? = nil, b24Column = 0, ldb: Int, n: Int
        var c: UnsafeMutablePointer<Float>, ldc: Int
    }

    /// Several products of one A (Q/K/V, gate/up; one product for `sgemmPooled`) in one pool run:
    /// every product's tasks are tasks of a single `parallelFor`, so a layer waits for its threads
    /// once per group instead of once per weight. Pool tasks are taken dynamically, so a thread
    /// that a busy machine preempts just takes fewer tasks, where OpenBLAS's own threads split
    /// the work statically and wait for each other.
    ///
    /// `kernel` (untransposed B): A is packed once (on the pool), then tasks are 96-column strips ×
    /// row blocks of `lpc_sgemm_f32_packed`, which reads B (the weights) in place with its row
    /// stride (a strided column window, as in the side-by-side Q/K/V form, included). Every element is one FMA chain over k in order, so the
    /// result does not depend on the thread count or the task cut: it equals
    /// `lpc_sgemm_f32_reference` bit for bit (it differs from OpenBLAS's sums in the last bits).
    ///
    /// `pool`: N is cut into column panels run as single-threaded OpenBLAS sgemms. Each panel
    /// packs only its slice of B and all of A. Panels are issued column-major (Cᵀ = op(B)ᵀ·Aᵀ,
    /// which is what OpenBLAS's row-major interface does internally) so none takes the
    /// row-major-only direct kernel: for SmolLM2's prefill products (M = 128) every element is
    /// then summed exactly as in the unsplit call (checked bit for bit; narrow panels of other
    /// shapes may get OpenBLAS's small-matrix kernel and round differently). Products too small
    /// to split run as plain sgemms first. OpenBLAS is set to one thread meanwhile (its count is
    /// process-wide: a concurrent caller elsewhere runs single-threaded for that time) and
    /// restored after.
    static func sgemmPooledGroup(transB: Bool = false, m: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                                 products: [PooledProduct], mode: Threading = threading) {
        if mode == .kernel && !transB {
            sgemmKernelGroup(m: m, k: k, a: a, lda: lda, products: products)
            return
        }
        precondition(products.allSatisfy { $0.b != nil }, "f24 products run on the kernel path only")
        let threads = RuntimeThreads.threadCount
        var panels: [(product: Int, n0: Int, count: Int)] = []
        for (index, p) in products.enumerated() {
            guard mode != .openblas, threads > 1, m > 1, p.n >= 64, m * p.n * k >= minPooledWork else {
                sgemm(transB: transB, m: m, n: p.n, k: k, a: a, lda: lda, b: p.b!, ldb: p.ldb, c: p.c, ldc: p.ldc)
                continue
            }
            // Two panels per thread (a preempted thread's share is picked up), at least 32 wide, 16-aligned.
            let width = max(32, ((p.n + 2 * threads - 1) / (2 * threads) + 15) / 16 * 16)
            for n0 in stride(from: 0, to: p.n, by: width) { panels.append((index, n0, min(width, p.n - n0))) }
        }
        if panels.isEmpty { return }
        openblas_set_num_threads(1)
        defer { openblas_set_num_threads(Int32(threads)) }
        RuntimeThreads.parallelFor(panels.count) { task in
            let (index, n0, count) = panels[task]
            let p = products[index]
            // Columns n0 ..< n0+count of op(B): B[:, n0...] untransposed, rows n0... of B transposed.
            let bp = transB ? p.b! + n0 * p.ldb : p.b! + n0
            // Column-major: Cᵀ[count, m] = op(B)ᵀ[count, k] · Aᵀ[k, m].
            cblas_sgemm(CblasColMajor, transB ? CblasTrans : CblasNoTrans, CblasNoTrans, Int32(count), Int32(m), Int32(k),
                        1, bp, Int32(p.ldb), a, Int32(lda), 0, p.c + n0, Int32(p.ldc))
        }
    }

    /// Columns per `kernel` task: two 48-column tiles, so SmolLM2's products give 2–16 tasks each
    /// and a preempted thread's share is picked up by the other (interleaved prefill A/B at 2
    /// threads: 96 ~5–8% faster than 48, 144 and 192 slower).
    static let kernelStrip = 96
    /// Rows per `kernel` task at most: A's rows of a task [rows, k] stay in L2 (2 MiB) while the
    /// task's B strip passes; longer prompts are cut into row blocks of about this size.
    static let kernelRowBlock = 256

    /// Floats of widened 16-bit weights per block on the `kernel` path (4 MiB).
    static let kernelHalfScratch = 1 << 20

    /// Packed copies of A for the `kernel` path (reused: a fresh buffer per product would fault its pages in each time).
    static let packScratch = HalfScratch()

    /// The `kernel` path of `sgemmPooledGroup`: A packed once (`lpc_sgemm_pack_a`, in 16-row
    /// tasks on the pool), then tasks (product, row block, column strip), the strips of one
    /// product next to each other, all in one `parallelFor`.
    static func sgemmKernelGroup(m: Int, k: Int, a: UnsafePointer<Float>, lda: Int, products: [PooledProduct]) {
        if m == 0 || products.allSatisfy({ $0.n == 0 }) { return }
        if k == 0 {
            for p in products { lpc_sgemm_f32(Int64(m), 0, Int64(p.n), 0, a, Int64(lda), nil, Int64(p.ldb), p.c, Int64(p.ldc), 0) } // zeros
            return
        }
        // Row blocks of equal size, multiples of 8 rows (the micro-kernel's height) but the last.
        let blocks = (m + kernelRowBlock - 1) / kernelRowBlock
        let rowsPerBlock = ((m + blocks - 1) / blocks + 7) / 8 * 8
        var tasks: [(product: Int, row0: Int, rows: Int, n0: Int, n1: Int)] = []
        for (index, p) in products.enumerated() where p.n > 0 {
            for row0 in stride(from: 0, to: m, by: rowsPerBlock) {
                for n0 in stride(from: 0, to: p.n, by: kernelStrip) {
                    tasks.append((index, row0, min(rowsPerBlock, m - row0), n0, min(n0 + kernelStrip, p.n)))
                }
            }
        }
        packScratch.with(count: Int(lpc_sgemm_packed_a_count(Int64(m), Int64(k)))) { packed in
            // packed: 8-row blocks [k, 8]; rows i0 ..< i0+16 start at packed + i0·k.
            RuntimeThreads.parallelFor((m + 15) / 16) { task in
                let i0 = task * 16
                lpc_sgemm_pack_a(Int64(min(16, m - i0)), Int64(k), a + i0 * lda, Int64(lda), packed + i0 * k)
            }
            RuntimeThreads.parallelFor(tasks.count) { task in
                let t = tasks[task]
                let p = products[t.product]
                if let b24 = p.b24 {
                    lpc_sgemm_f24_packed(Int64(t.rows), Int64(t.n0), Int64(t.n1), Int64(k), packed + t.row0 * k,
                                         b24, Int64(p.ldb), Int64(p.b24Column), p.c + t.row0 * p.ldc, Int64(p.ldc), 0)
                } else {
                    lpc_sgemm_f32_packed(Int64(t.rows), Int64(t.n0), Int64(t.n1), Int64(k), packed + t.row0 * k,
                                         p.b, Int64(p.ldb), p.c + t.row0 * p.ldc, Int64(p.ldc), 0)
                }
            }
        }
    }

    /// Widens `n` 16-bit weights to float32: `lpc_f16_to_f32` (float16) or `lpc_bf16_to_f32_n`
    /// (bfloat16, exact: a bfloat16 is a float32's high half).
    typealias Widen = @convention(c) (UnsafePointer<UInt16>?, UnsafeMutablePointer<Float>?, Int64) -> Void

    /// `sgemmHalfB` for f24 weights (`lpc_f24`, tiled [k, n], exact widening): the same float32 products as
    /// `sgemmPooled` on the float32 weights, bit for bit, since our sgemm sums each element in k order.
    /// On the `kernel` path our sgemm widens B's chunks while it copies them (no extra pass).
    static func sgemmF24B(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<lpc_f24>,
                          c: UnsafeMutablePointer<Float>, ldc: Int, mode: Threading = threading) {
        if mode == .kernel {
            sgemmKernelGroup(m: m, k: k, a: a, lda: lda, products: [PooledProduct(b: nil, b24: b, ldb: max(n, 1), n: n, c: c, ldc: ldc)])
            return
        }
        widenedColumnBlocks(m: m, n: n, k: k, a: a, lda: lda, c: c, ldc: ldc, mode: mode,
                            widenRow: { row, n0, cols, out in lpc_f24_tiles_row_to_f32(b, Int64(k), Int64(n), Int64(row), Int64(n0), Int64(cols), out) })
    }

    /// C[m,n] = A[m,k] · B[k,n] with B stored as 16-bit bit patterns (row-major, ldb = n; float16
    /// unless `widen` says otherwise): B is widened in slices of rows of at most `maxScratch`
    /// floats (1 MiB: stays in L2 between the conversion and the sgemm that reads it) into a
    /// reused scratch buffer, each slice one sgemm accumulating into C. Slices are 170–455 deep
    /// for SmolLM2's shapes, about OpenBLAS's own K blocking, so they cost little against one
    /// full-depth sgemm; 64-deep slices (the old code) ran sgemm far below its speed.
    ///
    /// With the `kernel` path (AVX-512) B is instead widened in full-depth column blocks of at most
    /// `kernelScratch` floats, on the pool, and each block runs our pooled sgemm: f16/i16
    /// prefill then runs at the f32 kernel's speed plus one widening pass over the weights.
    static func sgemmHalfB(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<UInt16>,
                           c: UnsafeMutablePointer<Float>, ldc: Int, widen: Widen = lpc_f16_to_f32, maxScratch: Int = 1 << 18,
                           mode: Threading = threading, kernelScratch: Int = kernelHalfScratch) {
        if m == 0 || n == 0 { return }
        if k == 0 { scale(c, rows: m, cols: n, ld: ldc, by: 0); return }
        if mode == .kernel {
            widenedColumnBlocks(m: m, n: n, k: k, a: a, lda: lda, c: c, ldc: ldc, maxFloats: kernelScratch, mode: .kernel,
                                widenRow: { row, n0, cols, out in widen(b + row * n + n0, out, Int64(cols)) })
            return
        }
        let depth = max(1, min(k, maxScratch / n))
        HalfScratch.shared.with(count: depth * n) { staging in
            var k0 = 0
            while k0 < k {
                let slice = min(depth, k - k0)
                widen(b + k0 * n, staging, Int64(slice * n))
                sgemm(m: m, n: n, k: slice, a: a + k0, lda: lda, b: staging, ldb: n, beta: k0 == 0 ? 0 : 1, c: c, ldc: ldc)
                k0 += slice
            }
        }
    }

    /// C[m, n] = A[m, k] · B[k, n] with B widened to float32 in full-depth column blocks of at most
    /// `maxFloats` (whole rows when they fit, as for every SmolLM2 product; else 48-column
    /// multiples, the kernel's tile width) on the pool, each block one pooled sgemm.
    /// `widenRow(row, n0, cols, out)` writes B[row, n0..<n0+cols] to out.
    private static func widenedColumnBlocks(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                                            c: UnsafeMutablePointer<Float>, ldc: Int, maxFloats: Int = kernelHalfScratch,
                                            mode: Threading = threading,
                                            widenRow: (Int, Int, Int, UnsafeMutablePointer<Float>) -> Void) {
        if m == 0 || n == 0 { return }
        if k == 0 { scale(c, rows: m, cols: n, ld: ldc, by: 0); return }
        let fit = maxFloats / k
        let width = fit >= n ? n : max(48, fit / 48 * 48)
        HalfScratch.shared.with(count: k * min(width, n)) { staging in // [k, cols] per block
            for n0 in stride(from: 0, to: n, by: width) {
                let cols = min(width, n - n0)
                RuntimeThreads.parallelFor((k + 63) / 64) { task in
                    for row in (task * 64)..<min(k, task * 64 + 64) { widenRow(row, n0, cols, staging + row * cols) }
                }
                sgemmPooled(m: m, n: cols, k: k, a: a, lda: lda, b: staging, ldb: cols, c: c + n0, ldc: ldc, mode: mode)
            }
        }
    }

    /// y[m, n] = x[m, k] · w[n, k]ᵀ with w 16-bit bit patterns (a tied LM head at prefill): blocks
    /// of 256 weight rows are widened into the reused scratch, each block one sgemm.
    static func sgemmHalfNT(_ x: UnsafePointer<Float>, _ w: UnsafePointer<UInt16>, _ y: UnsafeMutablePointer<Float>,
                            m: Int, n: Int, k: Int, widen: Widen = lpc_f16_to_f32) {
        if m == 0 || n == 0 { return }
        let block = 256
        HalfScratch.shared.with(count: block * max(k, 1)) { staging in
            var r0 = 0
            while r0 < n {
                let rows = min(block, n - r0)
                widen(w + r0 * k, staging, Int64(rows * k))
                // y[:, r0..<r0+rows] = x · stagingᵀ
                sgemm(transB: true, m: m, n: rows, k: k, a: x, lda: max(k, 1), b: staging, ldb: max(k, 1), c: y + r0, ldc: max(n, 1))
                r0 += rows
            }
        }
    }

    /// Double-precision twin of `sgemm` (no gemv routing: float64 is never the hot path).
    static func dgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                      alpha: Double = 1,
                      a: UnsafePointer<Double>, lda: Int,
                      b: UnsafePointer<Double>, ldb: Int,
                      beta: Double = 0,
                      c: UnsafeMutablePointer<Double>, ldc: Int) {
        if m == 0 || n == 0 { return }
        if k == 0 {
            for row in 0..<m {
                for col in 0..<n { c[row * ldc + col] = beta == 0 ? 0 : beta * c[row * ldc + col] }
            }
            return
        }
        cblas_dgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// C *= beta over a [rows, cols] block (beta == 0 writes zeros without reading, as BLAS does).
    private static func scale(_ c: UnsafeMutablePointer<Float>, rows: Int, cols: Int, ld: Int, by beta: Float) {
        for row in 0..<rows {
            let line = c + row * ld
            if beta == 0 {
                line.update(repeating: 0, count: cols)
            } else if beta != 1 {
                for col in 0..<cols { line[col] *= beta }
            }
        }
    }
}

/// One float32 scratch buffer reused across calls (widened 16-bit weights for prefill sgemm; A
/// packed for the `kernel` sgemm path, in an instance of its own): a
/// fresh multi-megabyte allocation per call would page-fault its way in every time. A caller
/// that finds it busy (another session on another thread) gets a private buffer.
final class HalfScratch: @unchecked Sendable {
    static let shared = HalfScratch()
    private let lock = NSLock()
    private var buffer: UnsafeMutablePointer<Float>?
    private var capacity = 0

    func with(count: Int, _ body: (UnsafeMutablePointer<Float>) -> Void) {
        guard lock.try() else {
            let own = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
            defer { own.deallocate() }
            body(own)
            return
        }
        defer { lock.unlock() }
        if capacity < count {
            buffer?.deallocate()
            buffer = UnsafeMutablePointer<Float>.allocate(capacity: count)
            capacity = count
        }
        body(buffer!)
    }
}
