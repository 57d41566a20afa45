import CKernels
import Foundation
import Graph
import ONNXImport
@testable import Runtime
import TensorCore
import Testing
import TestSupport

/// `--weights f24`: float32 weights whose low byte is zero, stored in 3 bytes (`F24Packing`).
/// The claim is exactness: the same float32 values, the same sums, the same bits as `f32`.
/// - packing and widening: exact round trip (signed zeros, infinities, NaN, subnormals, tails),
///   a non-zero low byte anywhere is reported;
/// - the decode kernels (single and grouped, K-split and column bands) give the float32 kernels'
///   bits on the widened weights, and match the double-precision twin;
/// - prefill products (our sgemm widening B's chunks as it copies them: single, grouped, the
///   side-by-side Q/K/V form) likewise;
/// - the pass on the fixture models: with low bytes cleared, every product weight is packed and
///   the logits equal the float32 session's bit for bit; with the fixtures' own (full-precision)
///   weights nothing is packed.
@Suite("Products with f24 weights")
struct F24WeightsTests {
    /// Standard-normal floats with the low byte cleared (exactly representable in f24).
    static func exactWeights(_ count: Int, seed: UInt64) -> [Float] {
        FusedKernelTests.random(count, seed: seed).map { Float(bitPattern: $0.bitPattern & ~0xff) }
    }

    /// The matrix values [k, n] (row-major) in the kernels' f24 tiles.
    static func packed(_ values: [Float], k: Int, n: Int) -> [lpc_f24] {
        var out = [lpc_f24](repeating: lpc_f24(), count: values.count)
        #expect(lpc_f32_to_f24_tiles(values, &out, Int64(k), Int64(n), 0, Int64(k)) == 0)
        return out
    }

    /// Runs `body` until the pool's thread count is the same before and after it (other suites
    /// change it while tests run in parallel; the kernels' task split, and so the bits, depend on it).
    static func withStableThreads<T>(_ body: () throws -> T) rethrows -> T {
        for _ in 0..<5 {
            let before = lpc_get_threads()
            let result = try body()
            if lpc_get_threads() == before { return result }
        }
        return try body()
    }

    /// nil when a and b hold the same bits, else the first difference and how many differ (short
    /// failure messages: the arrays are long).
    static func bitDifference(_ a: [Float], _ b: [Float]) -> String? {
        guard a.count == b.count else { return "\(a.count) vs \(b.count) elements" }
        let differing = a.indices.filter { a[$0].bitPattern != b[$0].bitPattern }
        guard let first = differing.first else { return nil }
        return "\(differing.count) of \(a.count) differ; first at \(first): \(a[first]) vs \(b[first])"
    }

    @Test func packsAndWidensExactly() {
        var values = Self.exactWeights(1000, seed: 1)
        let specials: [UInt32] = [0, 0x8000_0000, 0x7F80_0000, 0xFF80_0000, 0x7FC0_0000, 0x0000_0100, 0x8000_0100,
                                  0x7F7F_FF00, 0x3F80_0000, 0x0080_0000]
        for (i, bits) in specials.enumerated() { values[3 * i + 1] = Float(bitPattern: bits) }
        for count in [0, 1, 15, 16, 17, 63, 64, 65, 1000] {
            let part = Array(values[..<count])
            var packed = [lpc_f24](repeating: lpc_f24(), count: count)
            #expect(lpc_f32_to_f24_n(part, &packed, Int64(count)) == 0)
            var wide = [Float](repeating: .nan, count: count + 1)
            wide[count] = 42
            lpc_f24_to_f32_n(packed, &wide, Int64(count))
            #expect(Self.bitDifference(Array(wide[..<count]), part) == nil, "round trip of \(count)")
            #expect(wide[count] == 42, "widening \(count) wrote past the end")
            for (i, value) in part.enumerated() {
                #expect(Float24(truncating: value).float.bitPattern == value.bitPattern, "Float24 of \(value)")
                #expect(lpc_f24_to_f32(packed[i]).bitPattern == value.bitPattern)
            }
        }
        // A non-zero low byte in the vector body or in the scalar tail is reported (and truncated).
        for position in [0, 7, 16, 999] {
            var lossy = values
            lossy[position] = Float(bitPattern: lossy[position].bitPattern | 0x01)
            var out = [lpc_f24](repeating: lpc_f24(), count: lossy.count)
            #expect(lpc_f32_to_f24_n(lossy, &out, Int64(lossy.count)) == -1, "low byte at \(position)")
            #expect(lpc_f24_to_f32(out[position]).bitPattern == values[position].bitPattern)
        }
    }

    /// The tiles (lpc_f24.h): `lpc_f24_tile_index` is a bijection onto 0 ..< k·n that follows the
    /// documented layout (blocks of 16 rows, strips of 48 columns, the last of each shorter);
    /// packing in row ranges of whole blocks gives the whole packing; widening gives the matrix
    /// back; a non-zero low byte in any row range is reported.
    @Test(arguments: [(1, 1), (1, 100), (3, 47), (16, 48), (17, 49), (33, 96), (40, 145), (130, 200)])
    func tilesFollowTheLayout(k: Int, n: Int) {
        var seen = [Bool](repeating: false, count: k * n)
        for j in 0..<k {
            for c in 0..<n {
                let b0 = j / 16 * 16, h = min(16, k - b0), s0 = c / 48 * 48, w = min(48, n - s0)
                let index = Int(lpc_f24_tile_index(Int64(k), Int64(n), Int64(j), Int64(c)))
                #expect(index == b0 * n + s0 * h + (j - b0) * w + (c - s0), "(\(j), \(c)) of [\(k), \(n)]")
                if (0..<k * n).contains(index) { seen[index] = true }
            }
        }
        #expect(!seen.contains(false), "every position used once, [\(k), \(n)]")
        let values = Self.exactWeights(k * n, seed: UInt64(k * 1000 + n))
        let whole = Self.packed(values, k: k, n: n)
        var ranges = [lpc_f24](repeating: lpc_f24(), count: k * n)
        for r0 in stride(from: 0, to: k, by: 32) {
            #expect(lpc_f32_to_f24_tiles(values, &ranges, Int64(k), Int64(n), Int64(r0), Int64(min(k, r0 + 32))) == 0)
        }
        #expect(zip(whole, ranges).allSatisfy { $0.bytes == $1.bytes }, "row ranges, [\(k), \(n)]")
        for j in 0..<k {
            for c in 0..<n {
                let packedValue = whole[Int(lpc_f24_tile_index(Int64(k), Int64(n), Int64(j), Int64(c)))]
                #expect(lpc_f24_to_f32(packedValue).bitPattern == values[j * n + c].bitPattern)
            }
        }
        var wide = [Float](repeating: .nan, count: k * n)
        lpc_f24_tiles_to_f32(whole, &wide, Int64(k), Int64(n), 0, Int64(k))
        #expect(Self.bitDifference(wide, values) == nil, "widened, [\(k), \(n)]")
        var lossy = values
        lossy[k * n - 1] = Float(bitPattern: lossy[k * n - 1].bitPattern | 0x80)
        var out = [lpc_f24](repeating: lpc_f24(), count: k * n)
        let lastRange = Int64((k - 1) / 16 * 16)
        #expect(lpc_f32_to_f24_tiles(lossy, &out, Int64(k), Int64(n), lastRange, Int64(k)) == -1, "low byte reported, [\(k), \(n)]")
    }

    static let ms = [1, 2, 4]
    static let ks = [1, 3, 4, 5, 64, 130, 576]
    static let ns = [1, 15, 16, 17, 63, 64, 65, 100, 192, 1536, 4100]

    /// lpc_gemv_kn_f24 gives lpc_gemv_kn_f32's bits on the widened weights (K-split for n ≤ 4096,
    /// column bands above), and the double-precision twin's values within float rounding.
    @Test(arguments: [1, 2, 3])
    func decodeMatchesFloat32Bits(threads: Int) {
        RuntimeThreads.setThreadCount(threads)
        defer { RuntimeThreads.setThreadCount(2) }
        var seed: UInt64 = 300
        for m in Self.ms {
            for k in Self.ks {
                for n in Self.ns {
                    seed += 1
                    let x = FusedKernelTests.random(m * k, seed: seed), w = Self.exactWeights(k * n, seed: seed + 5000)
                    let w24 = Self.packed(w, k: k, n: n)
                    var reference = [Float](repeating: .nan, count: m * n)
                    lpc_gemv_kn_f24_reference(x, w24, &reference, Int64(m), Int64(n), Int64(k))
                    let (fast, float32) = Self.withStableThreads { () -> ([Float], [Float]) in
                        var fast = [Float](repeating: .nan, count: m * n), float32 = fast
                        lpc_gemv_kn_f24(x, w24, &fast, Int64(m), Int64(n), Int64(k))
                        lpc_gemv_kn_f32(x, w, &float32, Int64(m), Int64(n), Int64(k))
                        return (fast, float32)
                    }
                    let what = "m=\(m) n=\(n) k=\(k) threads=\(threads)"
                    #expect(Self.bitDifference(fast, float32) == nil, "f24 vs f32 bits, \(what)")
                    GemvHalfTests.check(fast, reference, m, n, "f24 vs twin, " + what)
                }
            }
        }
    }

    /// The scalar column-band kernel (machines without AVX-512, so not reached through the
    /// dispatch here): bands cut anywhere, inside strips and blocks, match the double twin.
    @Test func scalarBandsMatchTheTwin() {
        for (index, (m, k, n)) in [(1, 5, 7), (2, 33, 100), (3, 70, 145)].enumerated() {
            let x = FusedKernelTests.random(m * k, seed: UInt64(800 + index)), w = Self.exactWeights(k * n, seed: UInt64(810 + index))
            let w24 = Self.packed(w, k: k, n: n)
            var reference = [Float](repeating: .nan, count: m * n), bands = reference
            lpc_gemv_kn_f24_reference(x, w24, &reference, Int64(m), Int64(n), Int64(k))
            let cuts = [0, 1, n / 3, n / 2 + 1, n]
            for (c0, c1) in zip(cuts, cuts.dropFirst()) where c0 < c1 {
                lpc_band_f24_scalar(x, w24, &bands, Int64(m), Int64(n), Int64(k), Int64(c0), Int64(c1))
            }
            GemvHalfTests.check(bands, reference, m, n, "scalar bands m=\(m) k=\(k) n=\(n)")
        }
    }

    /// The grouped product (Q/K/V- and gate/up-like parts, an empty part, odd widths).
    @Test(arguments: [1, 2, 3])
    func groupedMatchesFloat32Bits(threads: Int) {
        RuntimeThreads.setThreadCount(threads)
        defer { RuntimeThreads.setThreadCount(2) }
        for (index, (m, k, widths)) in [(1, 576, [576, 192, 192]), (1, 576, [1536, 1536]), (3, 1539, [9, 4100, 40]),
                                        (2, 23, [17, 1, 0, 64])].enumerated() {
            let x = FusedKernelTests.random(m * k, seed: UInt64(400 + index))
            let weights = widths.enumerated().map { Self.exactWeights(k * $0.element, seed: UInt64(450 + 10 * index + $0.offset)) }
            let packed = zip(weights, widths).map { Self.packed($0, k: k, n: $1) }
            let (fast, float32) = Self.withStableThreads { () -> ([[Float]], [[Float]]) in
                var fast = widths.map { [Float](repeating: .nan, count: max(m * $0, 1)) }, float32 = fast
                let sizes = widths.map(Int64.init)
                withArrayPointers(packed) { w24 in
                    withMutableArrayPointers(&fast) { y in
                        lpc_gemv_kn_multi_f24(x, w24, y, sizes, Int64(widths.count), Int64(m), Int64(k))
                    }
                }
                withArrayPointers(weights) { w in
                    withMutableArrayPointers(&float32) { y in
                        lpc_gemv_kn_multi_f32(x, w, y, sizes, Int64(widths.count), Int64(m), Int64(k))
                    }
                }
                return (fast, float32)
            }
            for p in widths.indices {
                let what = "group \(index) part \(p) threads=\(threads)"
                #expect(Self.bitDifference(Array(fast[p].prefix(m * widths[p])), Array(float32[p].prefix(m * widths[p]))) == nil, "\(what)")
            }
        }
    }

    /// Prefill rows: `lpc:MatMulKN` over f24 weights (widened blocks, then our sgemm) and the
    /// side-by-side group give the float32 products' bits; so do decode rows through the kernels.
    @Test(arguments: [1, 5, 24, 130])
    func productsMatchFloat32Bits(rows: Int) throws {
        let (k, n) = (96, 200)
        let x = Tensor(FusedKernelTests.random(rows * k, seed: UInt64(500 + rows)), shape: [rows, k])
        let w = Self.exactWeights(k * n, seed: 510)
        let w32 = Tensor(w, shape: [k, n]), w24 = Conversion.convert(w32, to: .float24)
        #expect(w24.dtype == .float24 && w24.byteCount == k * n * 3)
        let (fast, float32) = try Self.withStableThreads { () throws -> (Tensor, Tensor) in
            (try FusedKernels.matMulKN(x, w24), try FusedKernels.matMulKN(x, w32))
        }
        #expect(Self.bitDifference(fast.array(Float.self), float32.array(Float.self)) == nil, "MatMulKN rows \(rows)")
        // LPC_PREFILL_SGEMM=pool (OpenBLAS panels): f24 is widened in blocks first; the same values.
        var pooled = [Float](repeating: .nan, count: rows * n)
        MatMulBLAS.sgemmF24B(m: rows, n: n, k: k, a: x.pointer(Float.self), lda: k, b: w24.raw.assumingMemoryBound(to: lpc_f24.self),
                             c: &pooled, ldc: n, mode: .pool)
        #expect(closeness(Tensor(pooled, shape: [rows, n]), float32, atol: 1e-5, rtol: 1e-5).isClose, "pool path rows \(rows)")
        let splits = [120, 40, 40]
        let (parts24, parts32) = try Self.withStableThreads { () throws -> ([Tensor], [Tensor]) in
            (try FusedKernels.matMulKNSideBySide(x, w24, splits: splits), try FusedKernels.matMulKNSideBySide(x, w32, splits: splits))
        }
        for (a, b) in zip(parts24, parts32) {
            #expect(Self.bitDifference(a.array(Float.self), b.array(Float.self)) == nil, "side by side rows \(rows)")
        }
    }

    /// Our sgemm with f24 B (widened while its chunks are copied) gives the float32 call's bits:
    /// odd row counts, column windows inside a wider B, k across chunk boundaries, accumulate.
    @Test func sgemmMatchesFloat32Bits() {
        var seed: UInt64 = 600
        // (m, k, B's width, B's first column (on a strip's edge or not), C's columns, accumulate)
        for (m, k, ldb, bcol, n0, n1, accumulate) in [(1, 1, 5, 0, 0, 5, 0), (9, 129, 100, 0, 3, 97, 0), (17, 257, 300, 0, 0, 300, 1),
                                                      (8, 64, 48, 0, 0, 48, 0), (130, 96, 200, 0, 50, 200, 1),
                                                      (5, 150, 240, 96, 0, 144, 0), (7, 33, 130, 48, 10, 82, 1),
                                                      (3, 70, 150, 17, 0, 133, 0), (24, 140, 300, 100, 5, 200, 1)] {
            seed += 1
            let a = FusedKernelTests.random(m * k, seed: seed), b = Self.exactWeights(k * ldb, seed: seed + 50)
            let b24 = Self.packed(b, k: k, n: ldb), start = FusedKernelTests.random(m * ldb, seed: seed + 70)
            var packedA = [Float](repeating: 0, count: Int(lpc_sgemm_packed_a_count(Int64(m), Int64(k))))
            lpc_sgemm_pack_a(Int64(m), Int64(k), a, Int64(k), &packedA)
            var c24 = start, c32 = start
            lpc_sgemm_f24_packed(Int64(m), Int64(n0), Int64(n1), Int64(k), packedA, b24, Int64(ldb), Int64(bcol), &c24, Int64(ldb),
                                 Int32(accumulate))
            b.withUnsafeBufferPointer { b in
                lpc_sgemm_f32_packed(Int64(m), Int64(n0), Int64(n1), Int64(k), packedA, b.baseAddress! + bcol, Int64(ldb), &c32, Int64(ldb),
                                     Int32(accumulate))
            }
            #expect(Self.bitDifference(c24, c32) == nil, "m=\(m) k=\(k) B columns from \(bcol), columns \(n0)..<\(n1) accumulate=\(accumulate)")
            // The scalar twin the packed calls fall back to without AVX-512 reads the tiles the same way.
            var twin = start
            lpc_sgemm_packed_reference(Int64(m), Int64(n0), Int64(n1), Int64(k), packedA, nil, b24, Int64(ldb), Int64(bcol), &twin,
                                       Int64(ldb), Int32(accumulate))
            #expect(Self.bitDifference(twin, c24) == nil, "scalar twin, m=\(m) k=\(k) B columns from \(bcol)")
            var twin32 = start
            b.withUnsafeBufferPointer { b in
                lpc_sgemm_packed_reference(Int64(m), Int64(n0), Int64(n1), Int64(k), packedA, b.baseAddress! + bcol, nil, Int64(ldb), 0,
                                           &twin32, Int64(ldb), Int32(accumulate))
            }
            #expect(Self.bitDifference(twin32, c32) == nil, "float32 scalar twin, m=\(m) k=\(k)")
            #expect(c24.enumerated().allSatisfy { i, v in (n0..<n1).contains(i % ldb) || v.bitPattern == start[i].bitPattern },
                    "wrote outside the window, m=\(m)")
        }
    }

    /// Grouped prefill and decode over f24 weights (one pool run, A packed once) give the float32
    /// group's bits.
    @Test(arguments: [2, 24])
    func groupMatchesFloat32Bits(rows: Int) throws {
        let k = 64, widths = [80, 16, 33]
        let x = Tensor(FusedKernelTests.random(rows * k, seed: UInt64(700 + rows)), shape: [rows, k])
        let w32 = widths.enumerated().map { Tensor(Self.exactWeights(k * $0.element, seed: UInt64(710 + $0.offset)), shape: [k, $0.element]) }
        let w24 = w32.map { Conversion.convert($0, to: .float24) }
        let (a, b) = try Self.withStableThreads { () throws -> ([Tensor], [Tensor]) in
            (try FusedKernels.matMulKNGroup(x, w24), try FusedKernels.matMulKNGroup(x, w32))
        }
        for (p, (y24, y32)) in zip(a, b).enumerated() {
            #expect(Self.bitDifference(y24.array(Float.self), y32.array(Float.self)) == nil, "part \(p), rows \(rows)")
        }
    }

    /// The fixture decoders with every float32 initializer's low bytes cleared: the f24 session
    /// packs every product weight the float32 session streams (the LM head of a tied embedding,
    /// read transposed, stays float32), keeps the node count, and gives the same logits bit for
    /// bit. With the fixtures' own weights (full float32 precision) nothing is packed.
    @Test func packsExactWeightsAndKeepsLogitsBits() throws {
        for testCase in try ModelGoldenTests.cases() where testCase.model.hasSuffix("optimum") {
            var graph = try ONNXLoader.load(path: Fixtures.path("models/\(testCase.model)/model.onnx")).graph
            let untouched = try Session(graph: graph, options: SessionOptions(weightStorage: .f24)).graph
            #expect(!untouched.initializers.values.contains { $0.dtype == .float24 }, "\(testCase.model): packed full-precision weights")
            for (name, tensor) in graph.initializers where tensor.dtype == .float32 {
                graph.initializers[name] = Tensor(tensor.array(Float.self).map { Float(bitPattern: $0.bitPattern & ~0xff) }, shape: tensor.shape)
            }
            let f32 = try Session(graph: graph, options: SessionOptions(weightStorage: .f32))
            let f24 = try Session(graph: graph, options: SessionOptions(weightStorage: .f24))
            let packed = f24.graph.initializers.values.filter { $0.dtype == .float24 }
            guard lpc_f24_supported() != 0 else {
                #expect(packed.isEmpty, "\(testCase.model): f24 chosen without its kernel")
                continue
            }
            let streamed = f32.graph.nodes.filter { ["MatMulKN", "MatMulKNGroup"].contains($0.opType) && $0.domain == "lpc" }
                .flatMap { $0.inputs.dropFirst() }.filter { f32.graph.initializers[$0] != nil }
            #expect(!packed.isEmpty && packed.count == Set(streamed).count, "\(testCase.model): \(packed.count) f24 of \(Set(streamed).count) weights")
            #expect(f24.graph.nodes.count == f32.graph.nodes.count)
            let (a, b) = try Self.withStableThreads { () throws -> (Tensor, Tensor) in
                (try #require(try f24.run(testCase.feeds(), outputs: ["logits"])["logits"]),
                 try #require(try f32.run(testCase.feeds(), outputs: ["logits"])["logits"]))
            }
            #expect(Self.bitDifference(a.array(Float.self), b.array(Float.self)) == nil, "\(testCase.model): logits differ")
        }
    }

    /// `lpc optimize --weights f24`: the f24 weights are written as ONNX uint8 [K, N, 3] and read
    /// back as f24 views of the file's bytes (no packing at load); the reloaded session skips the
    /// passes and gives the float32 session's logits bit for bit.
    @Test func optimizedFileKeepsF24() throws {
        guard lpc_f24_supported() != 0 else { return } // nothing is packed without the kernel (see above)
        let testCase = try #require(try ModelGoldenTests.cases().first { $0.model == "llama-optimum" })
        var graph = try ONNXLoader.load(path: Fixtures.path("models/\(testCase.model)/model.onnx")).graph
        for (name, tensor) in graph.initializers where tensor.dtype == .float32 {
            graph.initializers[name] = Tensor(tensor.array(Float.self).map { Float(bitPattern: $0.bitPattern & ~0xff) }, shape: tensor.shape)
        }
        let packed = try Session(graph: graph, options: SessionOptions(weightStorage: .f24)).graph
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("lpc-f24-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var options = ONNXWriteOptions()
        options.metadata = [GraphOptimizer.optimizedKey: GraphOptimizer.passVersion, F24Packing.weightsKey: "f24"]
        try ONNXWriter.write(packed, to: folder + "/model.onnx", options: options)
        let reloaded = try ONNXLoader.load(path: folder + "/model.onnx").graph
        let f24Names = packed.initializers.filter { $0.value.dtype == .float24 }.map(\.key)
        #expect(!f24Names.isEmpty)
        for name in f24Names {
            let written = try #require(reloaded.initializers[name])
            #expect(written.dtype == .uint8 && written.shape == packed.initializers[name]!.shape + [3], "\(name) as written")
        }
        let session = try Session(graph: reloaded)
        #expect(session.passReport.contains { $0.contains("passes skipped") }, "\(session.passReport)")
        for name in f24Names { #expect(session.graph.initializers[name]?.dtype == .float24, "\(name) read back") }
        let f32 = try Session(graph: graph)
        let (a, b) = try Self.withStableThreads { () throws -> (Tensor, Tensor) in
            (try #require(try session.run(testCase.feeds(), outputs: ["logits"])["logits"]),
             try #require(try f32.run(testCase.feeds(), outputs: ["logits"])["logits"]))
        }
        #expect(Self.bitDifference(a.array(Float.self), b.array(Float.self)) == nil, "logits from the f24 file")

        // A folder whose f24 weights an older pass version wrote (row-major) is refused, not misread.
        options.metadata[GraphOptimizer.optimizedKey] = "2"
        try ONNXWriter.write(packed, to: folder + "/old.onnx", options: options)
        let old = try ONNXLoader.load(path: folder + "/old.onnx").graph
        #expect { _ = try Session(graph: old) } throws: { error in
            "\(error)".contains("pass version 2") && "\(error)".contains("run lpc optimize again")
        }
    }
}

/// Calls `body` with C pointers to each array's storage (kept alive for the call).
private func withArrayPointers<T, R>(_ arrays: [[T]], _ body: ([UnsafePointer<T>?]) -> R) -> R {
    let copies = arrays.map { array -> UnsafeMutablePointer<T> in
        let p = UnsafeMutablePointer<T>.allocate(capacity: max(array.count, 1))
        p.initialize(from: array, count: array.count)
        return p
    }
    defer { zip(copies, arrays).forEach { $0.deinitialize(count: $1.count); $0.deallocate() } }
    return body(copies.map { UnsafePointer($0) })
}

/// Calls `body` with C pointers to each output array's storage and copies the results back.
private func withMutableArrayPointers<R>(_ arrays: inout [[Float]], _ body: ([UnsafeMutablePointer<Float>?]) -> R) -> R {
    let buffers = arrays.map { array -> UnsafeMutablePointer<Float> in
        let p = UnsafeMutablePointer<Float>.allocate(capacity: array.count)
        p.initialize(from: array, count: array.count)
        return p
    }
    defer { buffers.forEach { $0.deallocate() } }
    let result = body(buffers.map { Optional($0) })
    for i in arrays.indices { arrays[i] = Array(UnsafeBufferPointer(start: buffers[i], count: arrays[i].count)) }
    return result
}
