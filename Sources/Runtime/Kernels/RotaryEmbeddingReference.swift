import TensorCore

/// Reference twin of `RotaryEmbeddingKernel`, in Double, shaped like the ONNX reference: view X
/// as [batch, seq, heads, head], gather cos/sin per (batch, seq), split the rotated part into
/// x1/x2 (halves or even/odd), form real = cos·x1 − sin·x2 and imag = sin·x1 + cos·x2, and put
/// them back.
enum RotaryEmbeddingReference {
    static func run(_ x: [Double], shape: [Int], cos: [Double], sin: [Double], cacheShape: [Int],
                    positions: [Int]?, numHeads: Int, rotaryDim: Int, interleaved: Bool) -> [Double] {
        let fourD = shape.count == 4
        let (batch, seq) = (shape[0], fourD ? shape[2] : shape[1])
        let heads = fourD ? shape[1] : numHeads
        let head = fourD ? shape[3] : shape[2] / numHeads
        let rot = rotaryDim == 0 ? head : rotaryDim
        let half = rot / 2
        // Flat index of element e of head h at (b, t) in X's own layout.
        func at(_ b: Int, _ t: Int, _ h: Int, _ e: Int) -> Int {
            fourD ? ((b * heads + h) * seq + t) * head + e : ((b * seq + t) * heads + h) * head + e
        }
        var y = x
        for b in 0..<batch {
            for t in 0..<seq {
                let row = positions.map { $0[b * seq + t] } ?? (b * seq + t)
                let c = (0..<half).map { cos[row * half + $0] }
                let s = (0..<half).map { sin[row * half + $0] }
                for h in 0..<heads {
                    let part = (0..<rot).map { x[at(b, t, h, $0)] }
                    let x1 = interleaved ? stride(from: 0, to: rot, by: 2).map { part[$0] } : Array(part[..<half])
                    let x2 = interleaved ? stride(from: 1, to: rot, by: 2).map { part[$0] } : Array(part[half...])
                    let real = (0..<half).map { c[$0] * x1[$0] - s[$0] * x2[$0] }
                    let imag = (0..<half).map { s[$0] * x1[$0] + c[$0] * x2[$0] }
                    var rotated: [Double] = real + imag
                    if interleaved {
                        for e in 0..<rot { rotated[e] = e % 2 == 0 ? real[e / 2] : imag[e / 2] }
                    }
                    for e in 0..<rot { y[at(b, t, h, e)] = rotated[e] }
                }
            }
        }
        return y
    }
}
