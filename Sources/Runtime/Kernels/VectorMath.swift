/// Vectorisable exp (Cephes' expf scheme: 2^n · p(r), |r| ≤ ln2/2, degree-6 polynomial), about
/// 2 ulp on [-87, 88]; inputs below -87.3 give exactly 0 (so a -inf mask contributes nothing),
/// above 88 give exp(88). Plain scalar code without libm calls or branches, so LLVM vectorises
/// the loops that call it (Swift's generic SIMD comparisons and min/max do not compile to
/// vector code without -march flags: they were 40 ns per element).
public enum VectorMath {
    @inlinable @inline(__always)
    public static func exp(_ input: Float) -> Float {
        let low: Float = -87.3, high: Float = 88.0
        var x = input < low ? low : input
        x = x > high ? high : x
        let magic: Float = 12582912 // 1.5 · 2^23: adding it rounds to an integer
        let t = x * 1.44269504088896341 + magic
        let n = t - magic
        var r = x - n * 0.693359375
        r = r + n * 2.12194440e-4
        var y: Float = 1.9875691500e-4
        y = y * r + 1.3981999507e-3
        y = y * r + 8.3334519073e-3
        y = y * r + 4.1665795894e-2
        y = y * r + 1.6666665459e-1
        y = y * r + 5.0000001201e-1
        y = y * (r * r) + r + 1
        // 2^n from n's bits in t (t = magic + n exactly, so its low mantissa bits are n).
        let bits = Int32(bitPattern: t.bitPattern) &- Int32(bitPattern: magic.bitPattern)
        let scale = Float(bitPattern: UInt32(bitPattern: (bits &+ 127) &<< 23))
        return input < low ? 0 : y * scale
    }

    /// row[i] ← exp(row[i] - shift); returns the sum.
    public static func expShifted(_ row: UnsafeMutablePointer<Float>, _ n: Int, by shift: Float) -> Float {
        for i in 0..<n { row[i] = exp(row[i] - shift) }
        // The sum in a separate loop: a float reduction would keep the exp loop scalar.
        var acc = SIMD16<Float>()
        let raw = UnsafeRawPointer(row)
        var i = 0
        while i + 16 <= n {
            acc += raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            i += 16
        }
        var sum = acc.sum()
        while i < n { sum += row[i]; i += 1 }
        return sum
    }
}
