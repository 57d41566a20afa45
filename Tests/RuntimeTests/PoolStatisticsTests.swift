import Foundation
@testable import Runtime
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The pool's balance counters (`lpc bench`'s "decode thread pool" line): a job that ran on the
/// pool shows up with its tasks split between the caller and the workers, and time on both sides.
@Suite("Thread pool statistics", .serialized)
struct PoolStatisticsTests {
    @Test func countsTasksOnEachSide() {
        RuntimeThreads.setThreadCount(2)
        let tasks = 32
        let caller = pthread_self()
        var pooled = false
        // Another suite's job may hold the pool (ours then runs inline, uncounted): retry until
        // some of our tasks ran on a worker.
        for _ in 0..<50 where !pooled {
            RuntimeThreads.resetPoolStatistics()
            let onWorker = UnsafeMutablePointer<Bool>.allocate(capacity: tasks)
            defer { onWorker.deallocate() }
            RuntimeThreads.parallelFor(tasks) { task in
                onWorker[task] = pthread_equal(pthread_self(), caller) == 0
                let start = DispatchTime.now().uptimeNanoseconds
                while DispatchTime.now().uptimeNanoseconds - start < 50_000 {} // 50 µs of work
            }
            let workerRan = (0..<tasks).filter { onWorker[$0] }.count
            guard workerRan > 0 else { continue }
            pooled = true
            let stats = RuntimeThreads.poolStatistics()
            #expect(stats.jobs >= 1)
            #expect(stats.workerTasks >= workerRan)
            #expect(stats.callerTasks >= tasks - workerRan)
            #expect(stats.workerTaskSeconds >= Double(workerRan) * 40e-6, "worker task time \(stats.workerTaskSeconds) s")
            if workerRan < tasks { #expect(stats.callerTaskSeconds >= Double(tasks - workerRan) * 40e-6) }
            #expect(stats.callerWaitSeconds >= 0)
        }
        #expect(pooled, "no job of 32 tasks ran on the pool's worker in 50 tries")
    }
}
