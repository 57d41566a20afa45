#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A block of bytes a tensor reads from: either owned (allocated here, freed on deinit) or a view
/// into memory someone else keeps alive (a memory-mapped file), which is never copied.
public final class TensorStorage: @unchecked Sendable {
    public let pointer: UnsafeMutableRawPointer
    public let byteCount: Int
    /// Keeps the memory alive for views (e.g. a `MappedFile`); nil for owned storage.
    private let owner: AnyObject?
    private let owned: Bool

    /// Allocates `byteCount` zeroed bytes, 64-byte aligned (a cache line, and AVX-512's width).
    public init(zeroedByteCount byteCount: Int) {
        self.byteCount = byteCount
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: 64)
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: max(byteCount, 1))
        owner = nil
        owned = true
    }

    /// Allocates `byteCount` uninitialised bytes, 64-byte aligned: for outputs a kernel fills whole.
    public init(uninitializedByteCount byteCount: Int) {
        self.byteCount = byteCount
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: 64)
        owner = nil
        owned = true
    }

    /// A view on memory that `owner` keeps alive. The memory must not be written through this view.
    public init(viewOf pointer: UnsafeMutableRawPointer, byteCount: Int, owner: AnyObject) {
        self.pointer = pointer
        self.byteCount = byteCount
        self.owner = owner
        owned = false
    }

    public var isView: Bool { !owned }

    deinit {
        if owned { pointer.deallocate() }
    }
}

/// A read-only memory map of a whole file. Tensors view into it; it is unmapped when the last
/// of them is gone.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let pointer: UnsafeMutableRawPointer?
    public let byteCount: Int

    public init(path: String) throws(TensorIOError) {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw .cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw .cannotOpen(path: path, reason: String(cString: strerror(errno)))
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw .cannotOpen(path: path, reason: "not a regular file")
        }
        byteCount = Int(info.st_size)
        if byteCount == 0 {
            pointer = nil
            return
        }
        let mapped = mmap(nil, byteCount, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let mapped, mapped != MAP_FAILED else {
            throw .cannotOpen(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        pointer = mapped
    }

    deinit {
        if let pointer { munmap(pointer, byteCount) }
    }
}
