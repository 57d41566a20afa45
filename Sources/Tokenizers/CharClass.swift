// Unicode character classes as the Rust side of HF tokenizers sees them, from Swift's
// Unicode.Scalar.Properties. The Rust components use different Unicode versions, and Swift's
// tables may be newer still, so classes are cut at the version each component knows:
//   Oniguruma regexes (\p{L}, \p{N}, \s; Split / ByteLevel)      Unicode 16.0
//   Rust std char (is_numeric, is_whitespace, to_lowercase)      current
//   Rust regex crate \w (Whitespace, single_word)                Unicode 16.0
//   unicode_categories (Punctuation, BertPreTokenizer, Bert      Unicode 8.0
//     normalizer's control test)
// (verified code point by code point against tokenizers 0.22 by scanning all of Unicode).
// BMP lookups come from a table built once; astral scalars are classified on the fly.

enum CharClass {
    /// \p{L} in Oniguruma: general category L.
    static let letter: UInt16 = 1 << 0
    /// \p{N} in Oniguruma: Nd, Nl, No.
    static let number: UInt16 = 1 << 1
    /// \s in Oniguruma and Rust's char::is_whitespace: the White_Space property.
    static let whitespace: UInt16 = 1 << 2
    /// \w in Rust's regex crate: Alphabetic, M, Nd, Pc, Join_Control.
    static let word: UInt16 = 1 << 3
    /// unicode_categories' is_punctuation (P*, Unicode 8.0), or ASCII punctuation.
    static let punctuation: UInt16 = 1 << 4
    /// Rust's char::is_numeric (Nd, Nl, No; current Unicode).
    static let numeric: UInt16 = 1 << 5
    /// Mn (for accent stripping).
    static let nonspacingMark: UInt16 = 1 << 6
    /// unicode_categories' is_other as seen by BertNormalizer: Cc, Co, Cf (Unicode 8.0).
    static let bertOther: UInt16 = 1 << 7

    private static func age(_ p: Unicode.Scalar.Properties) -> Int {
        guard let a = p.age else { return 1000 }
        return a.major * 10 + a.minor
    }

    static func compute(_ v: UInt32) -> UInt16 {
        guard let s = Unicode.Scalar(v) else { return 0 }
        let p = s.properties
        let age = age(p)
        let upTo16 = age <= 160, upTo8 = age <= 80
        var f: UInt16 = 0
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            if upTo16 { f |= letter }
        case .decimalNumber, .letterNumber, .otherNumber:
            f |= numeric
            if upTo16 { f |= number }
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            if upTo8 { f |= punctuation }
        case .nonspacingMark: f |= nonspacingMark
        case .control, .privateUse: f |= bertOther
        case .format: if upTo8 { f |= bertOther }
        default: break
        }
        // Category changes since Unicode 8.0 (Po then, So / Mn now).
        if v == 0x166D || v == 0x111C9 { f |= punctuation }
        if v < 0x80 && ((v >= 0x21 && v <= 0x2F) || (v >= 0x3A && v <= 0x40) || (v >= 0x5B && v <= 0x60) || (v >= 0x7B && v <= 0x7E)) {
            f |= punctuation
        }
        if p.isWhitespace { f |= whitespace }
        if upTo16 {
            switch p.generalCategory {
            case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: f |= word
            default: if p.isAlphabetic || p.isJoinControl { f |= word }
            }
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

    /// Rust's char::is_numeric (Digits pre-tokenizer).
    static func isNumeric(_ v: UInt32) -> Bool {
        if v < 0x80 { return v >= 0x30 && v <= 0x39 }
        return flags(v) & numeric != 0
    }

    /// HF Punctuation / BertPreTokenizer punctuation.
    static func isPunctuation(_ v: UInt32) -> Bool { flags(v) & punctuation != 0 }

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
