import Foundation

// Allocation-free hash maps for the hot paths: byte strings -> Int32 (vocabulary, word cache) and
// id pairs -> merge (rank, new id). Swift's String hashing uses canonical equivalence ("é" ==
// "e\u{301}"), which would merge distinct tokens, so vocabularies are keyed by raw UTF-8 bytes.

@inline(__always)
func hashBytes(_ p: UnsafeRawBufferPointer) -> UInt64 {
    var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(p.count)
    var i = 0
    let n = p.count
    while i + 8 <= n {
        let w = p.loadUnaligned(fromByteOffset: i, as: UInt64.self)
        h = (h ^ w) &* 0xFF51_AFD7_ED55_8CCD
        h ^= h >> 32
        i += 8
    }
    if i < n {
        var w: UInt64 = 0
        var shift: UInt64 = 0
        while i < n {
            w |= UInt64(p[i]) << shift
            shift += 8
            i += 1
        }
        h = (h ^ w) &* 0xC4CE_B9FE_1A85_EC53
    }
    h ^= h >> 29
    h = h &* 0xBF58_476D_1CE4_E5B9
    h ^= h >> 32
    return h
}

/// Open-addressing map from byte strings to Int32, keys kept in one arena.
struct BytesMap: Sendable {
    private struct Slot {
        var hash: UInt32
        var offset: UInt32
        var length: UInt32  // UInt32.max: empty
        var value: Int32
    }

    private var slots: [Slot]
    private var arena: [UInt8] = []
    private(set) var count = 0
    private var mask: Int

    init(capacity: Int = 16) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = [Slot](repeating: Slot(hash: 0, offset: 0, length: .max, value: 0), count: size)
        mask = size - 1
    }

    func get(_ key: UnsafeBufferPointer<UInt8>) -> Int32? {
        let h = hashBytes(UnsafeRawBufferPointer(key))
        let h32 = UInt32(truncatingIfNeeded: h)
        var i = Int(truncatingIfNeeded: h) & mask
        return slots.withUnsafeBufferPointer { s in
            arena.withUnsafeBufferPointer { a in
                while true {
                    let slot = s[i]
                    if slot.length == .max { return nil }
                    if slot.hash == h32 && Int(slot.length) == key.count
                        && (key.count == 0 || memcmp(a.baseAddress! + Int(slot.offset), key.baseAddress!, key.count) == 0) {
                        return slot.value
                    }
                    i = (i + 1) & mask
                }
            }
        }
    }

    func get(_ key: [UInt8]) -> Int32? { key.withUnsafeBufferPointer { get($0) } }

    func get(_ key: ArraySlice<UInt8>) -> Int32? { key.withUnsafeBufferPointer { get($0) } }

    /// Inserts or overwrites.
    mutating func set(_ key: UnsafeBufferPointer<UInt8>, _ value: Int32) {
        if (count + 1) * 2 > slots.count { grow() }
        let h = hashBytes(UnsafeRawBufferPointer(key))
        let h32 = UInt32(truncatingIfNeeded: h)
        var i = Int(truncatingIfNeeded: h) & mask
        while true {
            let slot = slots[i]
            if slot.length == .max { break }
            if slot.hash == h32 && Int(slot.length) == key.count
                && arena.withUnsafeBufferPointer({ a in key.count == 0 || memcmp(a.baseAddress! + Int(slot.offset), key.baseAddress!, key.count) == 0 }) {
                slots[i].value = value
                return
            }
            i = (i + 1) & mask
        }
        let offset = arena.count
        arena.append(contentsOf: key)
        slots[i] = Slot(hash: h32, offset: UInt32(offset), length: UInt32(key.count), value: value)
        count += 1
    }

    mutating func set(_ key: [UInt8], _ value: Int32) { key.withUnsafeBufferPointer { set($0, value) } }

    private mutating func grow() {
        let old = slots
        let size = slots.count * 2
        slots = [Slot](repeating: Slot(hash: 0, offset: 0, length: .max, value: 0), count: size)
        mask = size - 1
        for slot in old where slot.length != .max {
            // Lookups probe from the 64-bit hash's low bits, which the stored 32-bit hash keeps.
            var i = Int(slot.hash) & mask
            while slots[i].length != .max { i = (i + 1) & mask }
            slots[i] = slot
        }
    }
}

/// Open-addressing map from (id, id) to (rank, new id).
struct PairMap: Sendable {
    private var keys: [UInt64]
    private var values: [UInt64]
    private var mask: Int
    private static let empty = UInt64.max

    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        keys = [UInt64](repeating: PairMap.empty, count: size)
        values = [UInt64](repeating: 0, count: size)
        mask = size - 1
    }

    @inline(__always)
    static func key(_ a: Int32, _ b: Int32) -> UInt64 { UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b)) }

    @inline(__always)
    private static func slot(_ k: UInt64) -> Int {
        var h = k &* 0x9E37_79B9_7F4A_7C15
        h ^= h >> 29
        return Int(truncatingIfNeeded: h)
    }

    /// Later insertions of the same pair overwrite earlier ones (as collecting into a HashMap does).
    mutating func set(_ a: Int32, _ b: Int32, rank: UInt32, newId: Int32) {
        let k = PairMap.key(a, b)
        var i = PairMap.slot(k) & mask
        while keys[i] != PairMap.empty && keys[i] != k { i = (i + 1) & mask }
        keys[i] = k
        values[i] = UInt64(rank) << 32 | UInt64(UInt32(bitPattern: newId))
    }

    /// (rank, new id) packed as rank << 32 | newId, or nil.
    @inline(__always)
    func get(_ a: Int32, _ b: Int32) -> (rank: UInt32, newId: Int32)? {
        let k = PairMap.key(a, b)
        var i = PairMap.slot(k) & mask
        return keys.withUnsafeBufferPointer { kp in
            while true {
                let x = kp[i]
                if x == k {
                    let v = values[i]
                    return (UInt32(v >> 32), Int32(bitPattern: UInt32(truncatingIfNeeded: v)))
                }
                if x == PairMap.empty { return nil }
                i = (i + 1) & mask
            }
        }
    }
}
