import CKernels
import Foundation
import Graph
@testable import Runtime
import TensorCore
import Testing
import TestSupport

/// The grouped [K, N] matrix-vector kernel (`lpc_gemv_kn_multi_*`: K-split with partial sums for
/// narrow outputs, column bands for wide ones) against the scalar reference twin, part by part,
/// on swept and odd shapes, 1–3 threads. Tolerance atol/rtol 1e-4 (float sums reordered).
@Suite("Grouped gemv vs reference")
struct GemvMultiTests {
    static let cases: [(m: Int, k: Int, ns: [Int])] = [
        (1, 1, [1]), (1, 7, [3, 5]), (1, 576, [576, 192, 192]), (1, 576, [1536, 1536]), (1, 1536, [576]),
        (2, 33, [17, 1, 40]), (3, 130, [4100]), (8, 65, [31, 4097, 16]), (1, 5, [0, 9]), (5, 1000, [15, 15, 15, 15, 15, 15, 15, 15, 15]),
    ]

    @Test(arguments: [1, 2, 3])
    func matchesReference(threads: Int) {
        RuntimeThreads.setThreadCount(threads)
        defer { RuntimeThreads.setThreadCount(2) }
        for (index, testCase) in Self.cases.enumerated() {
            let (m, k, ns) = testCase
            let x = FusedKernelTests.random(m * k, seed: UInt64(10 + index))
            let weights = ns.enumerated().map { FusedKernelTests.random(k * $0.element, seed: UInt64(100 * index + $0.offset)) }
            var halves = weights.map { w in [UInt16](repeating: 0, count: w.count) }
            for p in ns.indices { lpc_f32_to_f16(weights[p], &halves[p], Int64(weights[p].count)) }
            for half in [false, true] {
                let outputs = ns.map { UnsafeMutablePointer<Float>.allocate(capacity: max(m * $0, 1)) }
                defer { outputs.forEach { $0.deallocate() } }
                for (p, out) in outputs.enumerated() { out.initialize(repeating: .nan, count: max(m * ns[p], 1)) }
                let sizes = ns.map(Int64.init)
                if half {
                    let pointers = halves.map { UnsafePointer<UInt16>($0.withUnsafeBufferPointer { $0.baseAddress! }) }
                    withExtendedLifetime(halves) {
                        lpc_gemv_kn_multi_f16(x, pointers.map { Optional($0) }, outputs.map { Optional($0) }, sizes, Int64(ns.count), Int64(m), Int64(k))
                    }
                } else {
                    let pointers = weights.map { UnsafePointer<Float>($0.withUnsafeBufferPointer { $0.baseAddress! }) }
                    withExtendedLifetime(weights) {
                        lpc_gemv_kn_multi_f32(x, pointers.map { Optional($0) }, outputs.map { Optional($0) }, sizes, Int64(ns.count), Int64(m), Int64(k))
                    }
                }
                for (p, n) in ns.enumerated() {
                    var reference = [Float](repeating: 0, count: m * n)
                    if half { lpc_gemv_kn_f16_reference(x, halves[p], &reference, Int64(m), Int64(n), Int64(k)) }
                    else { lpc_gemv_kn_f32_reference(x, weights[p], &reference, Int64(m), Int64(n), Int64(k)) }
                    let got = Array(UnsafeBufferPointer(start: outputs[p], count: m * n))
                    let report = closeness(Tensor(got, shape: [m, n]), Tensor(reference, shape: [m, n]), atol: 1e-4, rtol: 1e-4)
                    #expect(report.isClose, "m=\(m) k=\(k) part \(p) n=\(n) half=\(half) threads=\(threads): \(report)")
                }
            }
        }
    }

    /// The `lpc:MatMulKNGroup` kernel equals one `lpc:MatMulKN` per weight, for decode rows (the
    /// grouped gemv) and prefill rows (sgemm), f32 and f16 weights.
    @Test func groupKernelEqualsSeparateProducts() throws {
        let k = 40
        let weights = [7, 64, 19].enumerated().map { Tensor(FusedKernelTests.random(k * $0.element, seed: UInt64(50 + $0.offset)), shape: [k, $0.element]) }
        for rows in [1, 3, 12] {
            let x = Tensor(FusedKernelTests.random(rows * k, seed: UInt64(rows)), shape: [1, rows, k])
            for half in [false, true] {
                let ws = half ? weights.map { w -> Tensor in
                    let h = Tensor(uninitialized: .float16, shape: w.shape)
                    lpc_f32_to_f16(w.pointer(Float.self), h.raw.assumingMemoryBound(to: UInt16.self), Int64(w.count))
                    return h
                } : weights
                let node = Node(name: "g", opType: "MatMulKNGroup", domain: "lpc", inputs: ["x", "a", "b", "c"], outputs: ["ya", "yb", "yc"])
                let grouped = try FusedKernels.matMulKNGroup(KernelContext(node: node, inputs: [x] + ws, opset: 1))
                for (w, y) in zip(ws, grouped) {
                    let expected = try FusedKernels.matMulKN(x, w)
                    let report = closeness(y, expected, atol: 1e-4, rtol: 1e-4)
                    #expect(report.isClose, "rows \(rows) half \(half) \(w.shape): \(report)")
                }
            }
        }
    }
    /// `lpc:MatMulKNGroup(x, W, splits)` with the parts side by side in one [K, ΣN] float32 weight
    /// (MatMulGrouping's form for groups with a narrow part) equals one `lpc:MatMulKN` per part,
    /// for decode rows (one gemv, columns copied out) and prefill rows (strided sgemm panels);
    /// splits that do not add up to the weight's width are an error.
    @Test func sideBySideGroupEqualsSeparateProducts() throws {
        let k = 40, splits = [7, 64, 0, 19]
        let parts = splits.enumerated().map { Tensor(FusedKernelTests.random(k * $0.element, seed: UInt64(70 + $0.offset)), shape: [k, $0.element]) }
        let width = splits.reduce(0, +)
        var joined = [Float](repeating: 0, count: k * width)
        var column = 0
        for part in parts {
            let n = part.shape[1], values = part.array(Float.self)
            for row in 0..<k { for c in 0..<n { joined[row * width + column + c] = values[row * n + c] } }
            column += n
        }
        let w = Tensor(joined, shape: [k, width])
        let node = Node(name: "g", opType: "MatMulKNGroup", domain: "lpc", inputs: ["x", "w"], outputs: ["a", "b", "c", "d"],
                        attributes: ["splits": .ints(splits)])
        for rows in [1, 3, 8, 9, 12] {
            let x = Tensor(FusedKernelTests.random(rows * k, seed: UInt64(rows)), shape: [1, rows, k])
            let grouped = try FusedKernels.matMulKNGroup(KernelContext(node: node, inputs: [x, w], opset: 1))
            #expect(grouped.count == parts.count)
            for (part, y) in zip(parts, grouped) {
                let expected = try FusedKernels.matMulKN(x, part)
                #expect(y.shape == expected.shape)
                let report = closeness(y, expected, atol: 1e-4, rtol: 1e-4)
                #expect(report.isClose, "rows \(rows) part \(part.shape): \(report)")
            }
        }
        let bad = Node(name: "g", opType: "MatMulKNGroup", domain: "lpc", inputs: ["x", "w"], outputs: ["a", "b"],
                       attributes: ["splits": .ints([7, 64])])
        #expect(throws: KernelError.self) {
            try FusedKernels.matMulKNGroup(KernelContext(node: bad, inputs: [Tensor(FusedKernelTests.random(k, seed: 1), shape: [1, k]), w], opset: 1))
        }
    }
}
