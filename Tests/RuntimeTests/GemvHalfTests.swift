import CKernels
import Foundation
@testable import Runtime
import TensorCore
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The 16-bit-weight decode kernels (`lpc_gemv_half.c`: eight rows per pass, software prefetch,
/// masked tails) against their scalar reference twins, for float16, bfloat16 and int16 (`--weights
/// i16`, unscaled integers over the whole int16 range), on swept and odd shapes (rows, K and N around
/// the 8-row passes and 16-lane vectors), 1–3 threads, through every entry point: NT rows (LM head),
/// KN (K-split and column bands) and the grouped KN product. Tolerance atol/rtol 1e-4 (int16: after
/// dividing by 32767, i.e. as products of weights in [-1, 1]): the same products summed in another order.
@Suite("16-bit weight gemv vs reference")
struct GemvHalfTests {
    enum Kind: String, CaseIterable {
        case f16, bf16, i16
        /// What results are multiplied by before comparing: int16 products are 32767× larger.
        var resultScale: Float { self == .i16 ? 1 / 32767 : 1 }
    }

    static func bits(_ values: [Float], _ kind: Kind) -> [UInt16] {
        var out = [UInt16](repeating: 0, count: values.count)
        switch kind {
        case .f16: lpc_f32_to_f16(values, &out, Int64(values.count))
        case .bf16: lpc_f32_to_bf16_n(values, &out, Int64(values.count))
        case .i16: return Int16WeightsTests.bits(values)
        }
        return out
    }

    static let ms = [1, 2, 5, 8]
    static let ks = [1, 7, 8, 15, 17, 64, 130, 576]
    static let ns = [1, 8, 9, 16, 23, 100, 1536, 4100]

    static func check(_ fast: [Float], _ reference: [Float], _ m: Int, _ n: Int, _ what: String, scale: Float = 1) {
        let report = closeness(Tensor(fast.map { $0 * scale }, shape: [m, n]), Tensor(reference.map { $0 * scale }, shape: [m, n]),
                               atol: 1e-4, rtol: 1e-4)
        #expect(report.isClose, "\(what): \(report)")
    }

    /// The fast kernel's and its reference twin's y[m, n] for weights `w` of `kind`, read as
    /// [n, k] (NT: the LM head) or [k, n] (KN).
    static func products(_ kind: Kind, kn: Bool, _ x: [Float], _ w: UnsafePointer<UInt16>, m: Int, n: Int, k: Int)
        -> (fast: [Float], reference: [Float]) {
        var fast = [Float](repeating: .nan, count: m * n), reference = fast
        let (m64, n64, k64) = (Int64(m), Int64(n), Int64(k))
        switch (kind, kn) {
        case (.f16, false):
            lpc_gemv_f16(x, w, &fast, m64, n64, k64)
            lpc_gemv_f16_reference(x, w, &reference, m64, n64, k64)
        case (.bf16, false):
            lpc_gemv_bf16(x, w, &fast, m64, n64, k64)
            lpc_gemv_bf16_reference(x, w, &reference, m64, n64, k64)
        case (.i16, false):
            lpc_gemv_i16(x, w, &fast, m64, n64, k64)
            lpc_gemv_i16_reference(x, w, &reference, m64, n64, k64)
        case (.f16, true):
            lpc_gemv_kn_f16(x, w, &fast, m64, n64, k64)
            lpc_gemv_kn_f16_reference(x, w, &reference, m64, n64, k64)
        case (.bf16, true):
            lpc_gemv_kn_bf16(x, w, &fast, m64, n64, k64)
            lpc_gemv_kn_bf16_reference(x, w, &reference, m64, n64, k64)
        case (.i16, true):
            lpc_gemv_kn_i16(x, w, &fast, m64, n64, k64)
            lpc_gemv_kn_i16_reference(x, w, &reference, m64, n64, k64)
        }
        return (fast, reference)
    }

    @Test(arguments: [1, 2, 3])
    func matchesReferenceOnSweptShapes(threads: Int) {
        RuntimeThreads.setThreadCount(threads)
        defer { RuntimeThreads.setThreadCount(2) }
        var seed: UInt64 = 700
        for m in Self.ms {
            for k in Self.ks {
                for n in Self.ns {
                    seed += 1
                    let x = FusedKernelTests.random(m * k, seed: seed), wf = FusedKernelTests.random(n * k, seed: seed + 10_000)
                    for kind in Kind.allCases {
                        let w = Self.bits(wf, kind)
                        let what = "\(kind) m=\(m) n=\(n) k=\(k) threads=\(threads)"
                        w.withUnsafeBufferPointer { w in
                            let nt = Self.products(kind, kn: false, x, w.baseAddress!, m: m, n: n, k: k)
                            Self.check(nt.fast, nt.reference, m, n, "NT " + what, scale: kind.resultScale)
                            let kn = Self.products(kind, kn: true, x, w.baseAddress!, m: m, n: n, k: k)
                            Self.check(kn.fast, kn.reference, m, n, "KN " + what, scale: kind.resultScale)
                        }
                    }
                }
            }
        }
    }

    /// The grouped product with parts of different widths (some K-split, one column-banded).
    @Test(arguments: [1, 2, 3])
    func groupedMatchesReference(threads: Int) {
        RuntimeThreads.setThreadCount(threads)
        defer { RuntimeThreads.setThreadCount(2) }
        for (index, (m, k, widths)) in [(1, 576, [576, 192, 192]), (1, 576, [1536, 1536]), (3, 1539, [9, 4100, 40]),
                                        (8, 23, [17, 1, 0, 64])].enumerated() {
            let x = FusedKernelTests.random(m * k, seed: UInt64(900 + index))
            for kind in Kind.allCases {
                let weights = widths.enumerated().map { Self.bits(FusedKernelTests.random(k * $0.element, seed: UInt64(950 + 10 * index + $0.offset)), kind) }
                let outputs = widths.map { UnsafeMutablePointer<Float>.allocate(capacity: max(m * $0, 1)) }
                defer { outputs.forEach { $0.deallocate() } }
                for (p, out) in outputs.enumerated() { out.initialize(repeating: .nan, count: max(m * widths[p], 1)) }
                let pointers = weights.map { UnsafePointer<UInt16>($0.withUnsafeBufferPointer { $0.baseAddress! }) }
                withExtendedLifetime(weights) {
                    let sizes = widths.map(Int64.init)
                    switch kind {
                    case .f16: lpc_gemv_kn_multi_f16(x, pointers.map { Optional($0) }, outputs.map { Optional($0) }, sizes, Int64(widths.count), Int64(m), Int64(k))
                    case .bf16: lpc_gemv_kn_multi_bf16(x, pointers.map { Optional($0) }, outputs.map { Optional($0) }, sizes, Int64(widths.count), Int64(m), Int64(k))
                    case .i16: lpc_gemv_kn_multi_i16(x, pointers.map { Optional($0) }, outputs.map { Optional($0) }, sizes, Int64(widths.count), Int64(m), Int64(k))
                    }
                }
                for (p, n) in widths.enumerated() {
                    var reference = [Float](repeating: 0, count: m * n)
                    switch kind {
                    case .f16: lpc_gemv_kn_f16_reference(x, weights[p], &reference, Int64(m), Int64(n), Int64(k))
                    case .bf16: lpc_gemv_kn_bf16_reference(x, weights[p], &reference, Int64(m), Int64(n), Int64(k))
                    case .i16: lpc_gemv_kn_i16_reference(x, weights[p], &reference, Int64(m), Int64(n), Int64(k))
                    }
                    Self.check(Array(UnsafeBufferPointer(start: outputs[p], count: m * n)), reference, m, n,
                               "grouped \(kind) m=\(m) k=\(k) part \(p) n=\(n) threads=\(threads)", scale: kind.resultScale)
                }
            }
        }
    }

    /// Weights that end right before an inaccessible page: the kernels' masked tail loads and
    /// their prefetches must not touch memory past the tensor (a fault would crash the test).
    @Test func doesNotReadPastTheWeights() throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let region = try #require(mmap(nil, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
        defer { munmap(region, 4 * page) }
        #expect(mprotect(region + 3 * page, page, PROT_NONE) == 0)
        for (m, n, k) in [(1, 37, 23), (2, 9, 41), (1, 3, 600), (1, 600, 3)] {
            let count = n * k
            #expect(count * 2 <= 3 * page)
            let w = (region + 3 * page - count * 2).assumingMemoryBound(to: UInt16.self)
            let x = FusedKernelTests.random(m * k, seed: UInt64(n)), wf = FusedKernelTests.random(count, seed: UInt64(k))
            for kind in Kind.allCases {
                let bits = Self.bits(wf, kind)
                w.update(from: bits, count: count)
                let nt = Self.products(kind, kn: false, x, w, m: m, n: n, k: k)
                Self.check(nt.fast, nt.reference, m, n, "NT at the page end \(kind) m=\(m) n=\(n) k=\(k)", scale: kind.resultScale)
                let kn = Self.products(kind, kn: true, x, w, m: m, n: n, k: k)
                Self.check(kn.fast, kn.reference, m, n, "KN at the page end \(kind) m=\(m) n=\(n) k=\(k)", scale: kind.resultScale)
            }
        }
    }

    /// float32 → bfloat16 rounds to nearest even (checked against integer arithmetic on the bit
    /// pattern), keeps NaN a NaN and infinities infinite; bfloat16 → float32 is exact.
    @Test func bf16ConversionRoundsToNearestEven() {
        var values: [Float] = [0, -0, 1, -1, 0.1, 1.00390625, 1.01171875, 3.3895314e38, .greatestFiniteMagnitude,
                               .leastNonzeroMagnitude, 1e-40, .infinity, -.infinity]
        values += FusedKernelTests.random(4000, seed: 8).map { $0 * 100 }
        let bits = Self.bits(values, .bf16)
        var back = [Float](repeating: 0, count: values.count)
        lpc_bf16_to_f32_n(bits, &back, Int64(values.count))
        for (i, value) in values.enumerated() {
            let u = value.bitPattern
            let expected = UInt16((UInt64(u) + 0x7FFF + UInt64((u >> 16) & 1)) >> 16) // RNE on the bits
            #expect(bits[i] == expected, "f32→bf16 of \(value): \(bits[i]) vs \(expected)")
            #expect(back[i].bitPattern == UInt32(bits[i]) << 16, "bf16→f32 of \(value)")
        }
        let nan = Self.bits([.nan, -.nan], .bf16)
        #expect(nan.allSatisfy { Float(bitPattern: UInt32($0) << 16).isNaN })
    }
}
