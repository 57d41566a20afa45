import Foundation
import TensorCore
import Testing

/// `TensorStorage(weightByteCount:)`: blocks from 2 MiB are 2 MiB-aligned anonymous mappings
/// (advised for transparent huge pages; whether the kernel grants them is not asserted), smaller
/// ones heap blocks; every byte is writable and reads back, and freeing unmaps.
@Suite("Weight storage")
struct WeightStorageTests {
    @Test(arguments: [1, 4096, (2 << 20) - 1, 2 << 20, (2 << 20) + 1, 5 * (2 << 20) + 12345])
    func allocatesAlignedWritableBlocks(byteCount: Int) {
        let storage = TensorStorage(weightByteCount: byteCount)
        #expect(storage.byteCount == byteCount)
        #expect(!storage.isView)
        let address = Int(bitPattern: storage.pointer)
        if byteCount >= TensorStorage.hugePageSize {
            #expect(storage.isHugePageMapping)
            #expect(address % TensorStorage.hugePageSize == 0, "address \(address)")
        } else {
            #expect(!storage.isHugePageMapping)
            #expect(address % 64 == 0)
        }
        // Writes at every 4 KiB and the last byte read back.
        let bytes = storage.pointer.assumingMemoryBound(to: UInt8.self)
        for offset in stride(from: 0, to: byteCount, by: 4096) { bytes[offset] = UInt8(truncatingIfNeeded: offset / 4096 + 1) }
        bytes[byteCount - 1] = 0xA5
        for offset in stride(from: 0, to: byteCount - 1, by: 4096) {
            #expect(bytes[offset] == UInt8(truncatingIfNeeded: offset / 4096 + 1))
        }
        #expect(bytes[byteCount - 1] == 0xA5)
    }

    /// Many large blocks made and dropped in turn: each is unmapped when freed. A leak would grow
    /// the process's virtual size by 64 × 64 MiB = 4 GiB; we allow 1 GiB for other tests running
    /// alongside.
    @Test func freesMappings() throws {
        let before = try #require(Self.virtualBytes())
        for _ in 0..<64 {
            let storage = TensorStorage(weightByteCount: 64 << 20)
            storage.pointer.storeBytes(of: 1, toByteOffset: (64 << 20) - 1, as: UInt8.self)
            #expect(storage.isHugePageMapping)
        }
        let after = try #require(Self.virtualBytes())
        #expect(after - before < 1 << 30, "virtual size grew by \(after - before) bytes")
    }

    /// VmSize from /proc/self/status (Linux).
    static func virtualBytes() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmSize:") }),
              let kib = Int(line.split(separator: " ").dropFirst().first ?? "") else { return nil }
        return kib * 1024
    }
}
