import CKernels
import Foundation
import Graph
import ONNXImport
@testable import Runtime
import TensorCore
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// `--weights i16`: int16 weights with one float32 scale per output (`WeightConversion`).
/// - the int16 decode kernels against their twins: in `GemvHalfTests` (its `.i16` kind), with
///   weights from `bits` spanning the whole int16 range (sign extension);
/// - the quantization: q = round(w / s) to nearest even with s = max |w| / 32767 per output, against
///   the same arithmetic in Swift (exact), all-zero outputs (s = 1), non-finite weights refused;
/// - `lpc:MatMulKN` / `lpc:MatMulNT` over int16 weights (gemv and sgemm rows) against float32 on the
///   widened integers (atol 1e-5 + rtol 1e-4 after the same division);
/// - products with their scales input (alone and grouped) against float32 on dequantized weights;
/// - the pass on real graphs: what it converts, the scales each product carries, and the logits of
///   the tiny fixture models against their float32 goldens.
@Suite("Products with int16 weights")
struct Int16WeightsTests {
    /// Values (standard normal) → int16 bits of round(clamp(v / 4, -1, 1) · 32767); the extremes
    /// 32767 and -32768 included.
    static func bits(_ values: [Float]) -> [UInt16] {
        var out = values.map { UInt16(bitPattern: Int16((max(-1, min(1, $0 / 4)) * 32767).rounded())) }
        if out.count > 2 { out[0] = UInt16(bitPattern: Int16.min); out[out.count - 1] = UInt16(bitPattern: Int16.max) }
        return out
    }

    /// Per output: s = max |w| / 32767 and q = round(w / s) ties to even (the same float32
    /// arithmetic in Swift: equal bits); all-zero outputs get s = 1 and q = 0; the largest |w| of
    /// each output maps to ±32767; a NaN or an infinity is refused. Widening is exact.
    @Test func quantizesPerOutput() {
        let (k, n) = (37, 11)
        var w = FusedKernelTests.random(k * n, seed: 5).enumerated().map { $0.element * Float(1 + $0.offset % 7) * 0.01 }
        for j in 0..<k { w[j * n + 3] = 0 } // column 3 (KN) all zero
        w[5 * n + 4] = 0.5 * (1 / 32767) * 0.02 // a tiny weight
        // KN: columns of w [k, n].
        var q = [UInt16](repeating: 0, count: k * n), scale = [Float](repeating: .nan, count: n)
        #expect(lpc_f32_to_i16_columns(w, &q, &scale, Int64(k), Int64(n)) == 0)
        for c in 0..<n {
            let top = (0..<k).map { abs(w[$0 * n + c]) }.max()!
            #expect(scale[c] == (top > 0 ? top / 32767 : 1), "column \(c) scale")
            for j in 0..<k {
                let expected = Int16((w[j * n + c] / scale[c]).rounded(.toNearestOrEven))
                #expect(Int16(bitPattern: q[j * n + c]) == expected, "column \(c) row \(j)")
            }
            if top > 0 { #expect((0..<k).contains { abs(Int(Int16(bitPattern: q[$0 * n + c]))) == 32767 }) }
        }
        // NT: rows of the same numbers read as w [k, n] = [n', k'] with n' = k rows of length n.
        var qr = [UInt16](repeating: 0, count: k * n), rowScale = [Float](repeating: .nan, count: k)
        #expect(lpc_f32_to_i16_rows(w, &qr, &rowScale, Int64(k), Int64(n)) == 0)
        for r in 0..<k {
            let top = w[(r * n)..<(r * n + n)].map(abs).max()!
            #expect(rowScale[r] == top / 32767, "row \(r) scale")
            for j in 0..<n {
                #expect(Int16(bitPattern: qr[r * n + j]) == Int16((w[r * n + j] / rowScale[r]).rounded(.toNearestOrEven)))
            }
        }
        for bad in [Float.nan, .infinity, -.infinity] {
            var v = w
            v[17] = bad
            #expect(lpc_f32_to_i16_columns(v, &q, &scale, Int64(k), Int64(n)) == -1, "\(bad) in KN")
            #expect(lpc_f32_to_i16_rows(v, &qr, &rowScale, Int64(k), Int64(n)) == -1, "\(bad) in NT")
        }
        let extremes: [UInt16] = [0, 1, 0x7FFF, 0x8000, 0x8001, 0xFFFF, 12345]
        var wide = [Float](repeating: .nan, count: extremes.count)
        lpc_i16_to_f32_n(extremes, &wide, Int64(extremes.count))
        #expect(wide == [0, 1, 32767, -32768, -32767, -1, 12345])
    }

    @Test(arguments: [1, 5, 24]) // 1 and 5 rows: gemv kernels; 24: sgemm on widened blocks
    func kernelsMatchFloat32OnWidenedWeights(rows: Int) throws {
        var rng = Xoshiro256(seed: UInt64(40 + rows))
        let (k, n) = (48, 20)
        let x = Tensor((0..<rows * k).map { _ in Float.random(in: -1...1, using: &rng) }, shape: [rows, k])
        let bits = Self.bits((0..<k * n).map { _ in Float.random(in: -1...1, using: &rng) })
        let w16 = Tensor(dtype: .int16, shape: [k, n], storage: TensorStorage(weightByteCount: bits.count * 2))
        bits.withUnsafeBytes { w16.raw.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        let wide = bits.map { Float(Int16(bitPattern: $0)) }
        func unit(_ t: Tensor) -> Tensor { Tensor(t.array(Float.self).map { $0 / 32767 }, shape: t.shape) }
        let kn = try FusedKernels.matMulKN(x, w16), kn32 = try FusedKernels.matMulKN(x, Tensor(wide, shape: [k, n]))
        #expect(closeness(unit(kn), unit(kn32), atol: 1e-5, rtol: 1e-4).isClose, "MatMulKN rows \(rows)")
        let nt16 = Tensor(dtype: .int16, shape: [24, 40], storage: w16.storage)
        let x2 = Tensor((0..<rows * 40).map { _ in Float.random(in: -1...1, using: &rng) }, shape: [rows, 40])
        let nt = try FusedKernels.matMulNT(x2, nt16), ntRef = try FusedKernels.matMulNT(x2, Tensor(wide, shape: [24, 40]))
        #expect(closeness(unit(nt), unit(ntRef), atol: 1e-5, rtol: 1e-4).isClose, "MatMulNT rows \(rows)")
    }

    /// The pass on the fixture decoders: every float32 product weight the f16 pass converts is
    /// int16 here, and every product over int16 weights carries a float32 scale per output as an
    /// extra input (MatMulKN/NT: input 2; MatMulKNGroup: `scaled = 1`, x, W1…Wp, scales1…scalesp);
    /// no node is added. Logits stay within 1e-3 of the float32 goldens (measured max 2.4e-4;
    /// f16 weights measure ~3e-3).
    @Test func convertsEveryProductAndKeepsLogits() throws {
        for testCase in try ModelGoldenTests.cases() where testCase.model.hasSuffix("optimum") {
            let graph = try ONNXLoader.load(path: Fixtures.path("models/\(testCase.model)/model.onnx")).graph
            let f16 = try Session(graph: graph, options: SessionOptions(weightStorage: .f16)).graph
            let session = try Session(graph: graph, options: SessionOptions(weightStorage: .i16))
            let g = session.graph
            let halfCount = f16.initializers.values.filter { $0.dtype == .float16 }.count
            let int16 = g.initializers.filter { $0.value.dtype == .int16 }
            #expect(halfCount > 0 && int16.count == halfCount, "\(testCase.model): \(int16.count) int16 vs \(halfCount) f16 weights")
            #expect(g.nodes.count == f16.nodes.count, "\(testCase.model): \(g.nodes.count) nodes vs \(f16.nodes.count) with f16")
            var scaledProducts = 0
            for node in g.nodes where node.domain == "lpc" && node.opType.hasPrefix("MatMul") {
                let inputs = node.inputs.dropFirst().compactMap { g.initializers[$0] }
                #expect(!inputs.contains { $0.dtype == .float32 && $0.rank == 2 }, "\(node.name) kept float32 weights")
                guard inputs.first?.dtype == .int16 else { continue }
                let parts = node.opType == "MatMulKNGroup" ? inputs.count / 2 : 1
                #expect(inputs.count == 2 * parts && node.inputs.count == 2 * parts + 1, "\(node.name): \(node.inputs)")
                #expect(node.opType != "MatMulKNGroup" || node.int("scaled") == 1, "\(node.name)")
                for p in 0..<parts {
                    let (w, scale) = (inputs[p], inputs[parts + p])
                    let outputs = node.opType == "MatMulNT" ? w.shape[0] : w.shape[1]
                    #expect(w.dtype == .int16 && scale.dtype == .float32 && scale.shape == [outputs], "\(node.name) part \(p)")
                    #expect(scale.array(Float.self).allSatisfy { $0 > 0 && $0.isFinite })
                    scaledProducts += 1
                }
            }
            #expect(scaledProducts == int16.count, "\(testCase.model): \(scaledProducts) scaled products, \(int16.count) int16 weights")
            let results = try session.run(testCase.feeds(), outputs: ["logits"])
            let report = closeness(try #require(results["logits"]), try testCase.golden("logits"), atol: 1e-3, rtol: 0)
            #expect(report.isClose, "\(testCase) logits with i16 weights: \(report)")
        }
    }

    /// Decode rows (gemv) and prefill rows (sgemm), alone and grouped: `lpc:MatMulKN(x, q, s)` and
    /// `lpc:MatMulKNGroup` with `scaled = 1` against float32 products on the dequantized weights q·s
    /// (atol 1e-5 + rtol 1e-4); a scales input of the wrong size is an error.
    @Test(arguments: [1, 5, 24])
    func scaledProductsMatchDequantizedWeights(rows: Int) throws {
        let (k, widths) = (40, [24, 9])
        let x = Tensor(FusedKernelTests.random(rows * k, seed: UInt64(60 + rows)), shape: [rows, k])
        var graphInits: [String: Tensor] = [:], nodes: [Node] = [], outputs: [ValueInfo] = [], expected: [String: Tensor] = [:]
        for (p, n) in widths.enumerated() {
            let w = FusedKernelTests.random(k * n, seed: UInt64(70 + p))
            var q = [UInt16](repeating: 0, count: k * n), s = [Float](repeating: 0, count: n)
            #expect(lpc_f32_to_i16_columns(w, &q, &s, Int64(k), Int64(n)) == 0)
            let qt = Tensor(dtype: .int16, shape: [k, n], storage: TensorStorage(weightByteCount: q.count * 2))
            q.withUnsafeBytes { qt.raw.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            graphInits["q\(p)"] = qt
            graphInits["s\(p)"] = Tensor(s, shape: [n])
            let dequantized = (0..<k * n).map { Float(Int16(bitPattern: q[$0])) * s[$0 % n] }
            expected["y\(p)"] = try FusedKernels.matMulKN(x, Tensor(dequantized, shape: [k, n]))
            nodes.append(Node(name: "m\(p)", opType: "MatMulKN", domain: "lpc", inputs: ["x", "q\(p)", "s\(p)"], outputs: ["y\(p)"]))
            outputs.append(ValueInfo(name: "y\(p)", dtype: .float32, shape: nil))
        }
        let group = Node(name: "g", opType: "MatMulKNGroup", domain: "lpc", inputs: ["x", "q0", "q1", "s0", "s1"],
                         outputs: ["z0", "z1"], attributes: ["scaled": .int(1)])
        let graph = Graph(inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(rows), .fixed(k)])],
                          outputs: outputs + ["z0", "z1"].map { ValueInfo(name: $0, dtype: .float32, shape: nil) },
                          initializers: graphInits, nodes: nodes + [group], opsets: ["": 17, "lpc": 1])
        let results = try Session(graph: graph, options: SessionOptions(optimize: false)).run(["x": x])
        for p in widths.indices {
            let want = try #require(expected["y\(p)"])
            #expect(closeness(try #require(results["y\(p)"]), want, atol: 1e-5, rtol: 1e-4).isClose, "MatMulKN part \(p) rows \(rows)")
            #expect(closeness(try #require(results["z\(p)"]), want, atol: 1e-5, rtol: 1e-4).isClose, "group part \(p) rows \(rows)")
        }
        var bad = graph
        bad.initializers["s0"] = Tensor([Float](repeating: 1, count: 5), shape: [5])
        #expect(throws: (any Error).self) { try Session(graph: bad, options: SessionOptions(optimize: false)).run(["x": x]) }
    }

    /// A weight holding a NaN cannot be quantized: it stays float32 (its product unscaled), the
    /// others convert.
    @Test func nonFiniteWeightsStayFloat32() throws {
        let k = 64, n = 80
        let x = ValueInfo(name: "x", dtype: .float32, shape: [.fixed(1), .fixed(k)])
        var bad = FusedKernelTests.random(k * n, seed: 3)
        bad[7] = .nan
        let graph = Graph(inputs: [x], outputs: [ValueInfo(name: "y1", dtype: .float32, shape: nil), ValueInfo(name: "y2", dtype: .float32, shape: nil)],
                          initializers: ["good": Tensor(FusedKernelTests.random(k * n, seed: 4), shape: [k, n]), "bad": Tensor(bad, shape: [k, n])],
                          nodes: [Node(name: "m1", opType: "MatMul", inputs: ["x", "good"], outputs: ["y1"]),
                                  Node(name: "m2", opType: "MatMul", inputs: ["x", "bad"], outputs: ["y2"])],
                          opsets: ["": 17])
        let session = try Session(graph: graph, options: SessionOptions(weightStorage: .i16))
        #expect(session.graph.initializers["good.i16"]?.dtype == .int16)
        #expect(session.graph.initializers["bad"]?.dtype == .float32)
        let feeds = ["x": Tensor(FusedKernelTests.random(k, seed: 9), shape: [1, k])]
        let out = try session.run(feeds)
        let reference = try Session(graph: graph, options: SessionOptions(optimize: false)).run(feeds)
        #expect(closeness(try #require(out["y1"]), try #require(reference["y1"]), atol: 1e-3, rtol: 1e-3).isClose)
    }
}
