// Unicode character classes as the Rust side of HF tokenizers sees them (Oniguruma regexes and
// Rust's char methods), from Swift's Unicode.Scalar.Properties. Lookups for the BMP come from a
// table built once; astral scalars are classified on the fly.

enum CharClass {
    /// \p{L}: general category L (Lu, Ll, Lt, Lm, Lo).
    static let letter: UInt16 = 1 << 0
    /// \p{N}: Nd, Nl, No (also Rust's char::is_numeric).
    static let number: UInt16 = 1 << 1
    /// \s in Oniguruma (Unicode) and Rust's char::is_whitespace: the White_Space property.
    static let whitespace: UInt16 = 1 << 2
    /// \w in Oniguruma and Rust's regex: Alphabetic, M, Nd, Pc, Join_Control.
    static let word: UInt16 = 1 << 3
    /// Rust's unicode_categories is_punctuation: Pc Pd Ps Pe Pi Pf Po.
    static let punctuation: UInt16 = 1 << 4
    /// Nd (\d).
    static let decimal: UInt16 = 1 << 5
    /// Mn (for accent stripping).
    static let nonspacingMark: UInt16 = 1 << 6
    /// C* (Cc Cf Cn Co Cs), for BertNormalizer.
    static let other: UInt16 = 1 << 7
    /// Zs, for BertNormalizer's whitespace test.
    static let spaceSeparator: UInt16 = 1 << 8

    static func compute(_ v: UInt32) -> UInt16 {
        guard let s = Unicode.Scalar(v) else { return other }
        let p = s.properties
        var f: UInt16 = 0
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            f |= letter
        case .decimalNumber: f |= number | decimal
        case .letterNumber, .otherNumber: f |= number
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            f |= punctuation
        case .nonspacingMark: f |= nonspacingMark
        case .control, .format, .unassigned, .privateUse, .surrogate: f |= other
        case .spaceSeparator: f |= spaceSeparator
        default: break
        }
        if p.isWhitespace { f |= whitespace }
        switch p.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: f |= word
        default: if p.isAlphabetic || p.isJoinControl { f |= word }
        }
        return f
    }

    static let bmp: [UInt16] = {
        var t = [UInt16](repeating: 0, count: 0x10000)
        for v in 0..<0x10000 { t[v] = compute(UInt32(v)) }
        return t
    }()

    @inline(__always)
    static func flags(_ v: UInt32) -> UInt16 {
        v < 0x10000 ? bmp.withUnsafeBufferPointer { $0[Int(v)] } : compute(v)
    }

    @inline(__always) static func isLetter(_ v: UInt32) -> Bool {
        if v < 0x80 { return (v | 0x20) >= 0x61 && (v | 0x20) <= 0x7A }
        return flags(v) & letter != 0
    }

    @inline(__always) static func isNumber(_ v: UInt32) -> Bool {
        if v < 0x80 { return v >= 0x30 && v <= 0x39 }
        return flags(v) & number != 0
    }

    @inline(__always) static func isWhitespace(_ v: UInt32) -> Bool {
        if v < 0x80 { return v == 0x20 || (v >= 0x09 && v <= 0x0D) }
        return flags(v) & whitespace != 0
    }

    /// Rust's `char::is_ascii_punctuation() || is_punctuation()` (HF Punctuation pre-tokenizer).
    static func isPunctuation(_ v: UInt32) -> Bool {
        if v < 0x80 {
            return (v >= 0x21 && v <= 0x2F) || (v >= 0x3A && v <= 0x40) || (v >= 0x5B && v <= 0x60) || (v >= 0x7B && v <= 0x7E)
        }
        return flags(v) & punctuation != 0
    }

    static func isWord(_ v: UInt32) -> Bool { flags(v) & word != 0 }
}

/// Decodes the scalar starting at `i` in valid UTF-8; returns it and its length in bytes.
@inline(__always)
func decodeScalar(_ p: UnsafeBufferPointer<UInt8>, _ i: Int) -> (UInt32, Int) {
    let b0 = UInt32(p[i])
    if b0 < 0x80 { return (b0, 1) }
    if b0 < 0xE0 { return ((b0 & 0x1F) << 6 | UInt32(p[i + 1] & 0x3F), 2) }
    if b0 < 0xF0 {
        return ((b0 & 0x0F) << 12 | UInt32(p[i + 1] & 0x3F) << 6 | UInt32(p[i + 2] & 0x3F), 3)
    }
    return ((b0 & 0x07) << 18 | UInt32(p[i + 1] & 0x3F) << 12 | UInt32(p[i + 2] & 0x3F) << 6 | UInt32(p[i + 3] & 0x3F), 4)
}

@inline(__always)
func utf8Length(leadByte b: UInt8) -> Int {
    if b < 0x80 { return 1 }
    if b < 0xE0 { return 2 }
    if b < 0xF0 { return 3 }
    return 4
}

@inline(__always)
func utf8Length(scalar v: UInt32) -> Int {
    v < 0x80 ? 1 : v < 0x800 ? 2 : v < 0x10000 ? 3 : 4
}

/// The scalars of valid UTF-8 bytes.
func scalars(of bytes: [UInt8]) -> [UInt32] {
    var out: [UInt32] = []
    out.reserveCapacity(bytes.count)
    bytes.withUnsafeBufferPointer { p in
        var i = 0
        while i < p.count {
            let (v, n) = decodeScalar(p, i)
            out.append(v)
            i += n
        }
    }
    return out
}

func utf8(of scalars: [UInt32]) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(scalars.count)
    for v in scalars { appendUTF8(v, to: &out) }
    return out
}

func string(fromValidUTF8 bytes: [UInt8]) -> String {
    String(decoding: bytes, as: UTF8.self)
}

func string<S: Sequence>(fromScalars scalars: S) -> String where S.Element == UInt32 {
    var s = String.UnicodeScalarView()
    for v in scalars { s.append(Unicode.Scalar(v)!) }
    return String(s)
}
