import CKernels
import Foundation
import Graph
@testable import Runtime
import TensorCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The idle worker's read-ahead of the next product's weights (`lpc_prefetch_weights`): it reads
/// what it is asked to, never after a cancel (the weights may be unmapped then), and a session
/// plans one request per weight-streaming product, cycling back to the first.
@Suite("Weight prefetch", .serialized)
struct WeightPrefetchTests {
    @Test func readsAheadUntilDoneAndNeverAfterCancel() throws {
        RuntimeThreads.setThreadCount(2)
        // One finished request (4 MiB, the longest one): the worker reads all of it.
        let size = 4 << 20
        let region = try Self.map(size)
        let before = lpc_prefetched_bytes()
        let deadline = Date().addingTimeInterval(10)
        while lpc_prefetched_bytes() - before < Int64(size) && Date() < deadline {
            Self.wakeWorker()
            lpc_prefetch_weights(region, Int64(size))
            usleep(2000)
        }
        #expect(lpc_prefetched_bytes() - before >= Int64(size), "the worker did not read the requested bytes")
        lpc_prefetch_cancel()
        munmap(region, size)

        // Requests cancelled while the worker is reading, each region made unreadable right after
        // (and kept reserved, so no later mapping takes its addresses): a read after the cancel
        // would fault and end the test process.
        let large = 64 << 20
        var retired: [UnsafeMutableRawPointer] = []
        defer { for p in retired { munmap(p, large) } }
        // Until five cancels caught the worker reading (at most 50 tries: on a loaded machine the
        // worker is not always scheduled in time; 10 fixed tries failed once with 3 of 10).
        var cancelledMidway = 0, tries = 0
        while cancelledMidway < 5 && tries < 50 {
            tries += 1
            let p = try Self.map(large)
            retired.append(p)
            let start = Date()
            while lpc_prefetch_in_progress() == 0 && Date().timeIntervalSince(start) < 2 {
                Self.wakeWorker()
                lpc_prefetch_weights(p, Int64(large))
                for _ in 0..<200 where lpc_prefetch_in_progress() == 0 { usleep(5) }
            }
            if lpc_prefetch_in_progress() != 0 { cancelledMidway += 1 }
            lpc_prefetch_cancel()
            madvise(p, large, MADV_DONTNEED)
            mprotect(p, large, PROT_NONE)
        }
        usleep(50000) // a worker still reading would fault now
        #expect(cancelledMidway >= 5, "the worker was reading at only \(cancelledMidway) of \(tries) cancels")
    }

    @Test func sessionPlansOneRequestPerStreamedProduct() throws {
        // x [1, 768] → three lpc:MatMulKN with [768, 768] float32 weights (2.25 MiB each) in a chain.
        let side = 768
        let names = ["w0", "w1", "w2"]
        var initializers: [String: Tensor] = [:]
        for (i, name) in names.enumerated() {
            initializers[name] = Tensor((0..<(side * side)).map { Float(($0 + i) % 13) * 1e-3 }, shape: [side, side])
        }
        let nodes = names.enumerated().map { i, name in
            Node(name: "mm\(i)", opType: "MatMulKN", domain: "lpc", inputs: [i == 0 ? "x" : "y\(i - 1)", name], outputs: ["y\(i)"])
        }
        let graph = Graph(inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(1), .fixed(side)])],
                          outputs: [ValueInfo(name: "y2", dtype: .float32, shape: nil)],
                          initializers: initializers, nodes: nodes, opsets: ["": 17, "lpc": 1])
        let session = try Session(graph: graph, options: SessionOptions(optimize: false))
        let hints = session.prefetchHints
        #expect(hints.map(\.node) == ["mm0", "mm1", "mm2"])
        // Each product names the end of the next one's weights (where the reading worker starts:
        // it claims tasks from the back), the last product the first's.
        let bytes = min(side * side * 4, Session.prefetchBudget)
        let expected = ["w1", "w2", "w0"].map { UnsafeRawPointer(initializers[$0]!.raw + side * side * 4 - bytes) }
        #expect(hints.map(\.pointer) == expected)
        #expect(hints.allSatisfy { $0.bytes == bytes })
        // Results do not depend on the read-ahead.
        RuntimeThreads.setThreadCount(2)
        let x = Tensor((0..<side).map { Float($0 % 5) - 2 }, shape: [1, side])
        let first = try session.run(["x": x])["y2"]!
        let second = try session.run(["x": x])["y2"]!
        #expect(first.array(Float.self) == second.array(Float.self))
    }

    /// Tasks are claimed from both ends (worker 0 from the back): each runs exactly once.
    @Test(arguments: [1, 2, 3])
    func everyTaskRunsOnce(threads: Int) {
        RuntimeThreads.setThreadCount(threads)
        defer { RuntimeThreads.setThreadCount(2) }
        for tasks in [1, 2, 3, 5, 8, 64, 1000] {
            let counts = UnsafeMutableBufferPointer<Int>.allocate(capacity: tasks)
            defer { counts.deallocate() }
            counts.initialize(repeating: 0)
            for _ in 0..<20 { RuntimeThreads.parallelFor(tasks) { counts[$0] += 1 } }
            #expect(counts.allSatisfy { $0 == 20 }, "\(tasks) tasks on \(threads) threads")
        }
    }

    /// A no-op job: a worker asleep after a long idle (or a pool in its serial fallback) comes back.
    static func wakeWorker() {
        for _ in 0..<300 { lpc_parallel_for(2, { _, _ in }, nil) }
    }

    static func map(_ size: Int) throws -> UnsafeMutableRawPointer {
        let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let p, p != MAP_FAILED else { throw POSIXError(.ENOMEM) }
        memset(p, 1, size)
        return p
    }
}
