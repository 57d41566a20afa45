import Foundation
import TensorCore

/// `--weights auto`: packs the exact float32 product weights to f24 on a thread of its own after
/// the session is ready, so loading costs nothing more than `f32` and decode later streams 3
/// bytes a weight instead of 4. f24 products give the float32 products' bits, so when a run
/// switches to a packed weight does not change any output: `Session` adopts the weights packed
/// so far at the start of each run.
final class BackgroundF24Packing: @unchecked Sendable {
    private let condition = NSCondition()
    private var packed: [(name: String, tensor: Tensor)] = []  // not yet adopted
    private var finished = false
    private var cancelled = false
    private let start = DispatchTime.now()
    /// Seconds from the start until the last weight was packed (nil while packing).
    private var duration: Double?

    /// Starts packing `groups` of `initializers` (`F24Packing.candidates`: first-use order), a
    /// whole group at a time (a product's weights switch dtype together).
    init(groups: [[String]], initializers: [String: Tensor]) {
        let thread = Thread { [self] in
            if let packer = F24Packer(groups: groups, initializers: initializers) {
                for g in packer.groups.indices {
                    guard let tensors = packer.pack(group: g, parallel: false, cancelled: { self.isCancelled }) else { continue }
                    condition.lock()
                    packed += tensors
                    condition.unlock()
                }
            }
            condition.lock()
            finished = true
            duration = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
            condition.broadcast()
            condition.unlock()
        }
        thread.name = "lpc f24 packing"
        thread.start()
    }

    /// The weights packed since the last call.
    func take() -> [(name: String, tensor: Tensor)] {
        condition.lock()
        defer { condition.unlock() }
        let ready = packed
        packed = []
        return ready
    }

    /// Blocks until every weight is packed (or skipped); returns the seconds packing took.
    @discardableResult
    func wait() -> Double {
        condition.lock()
        defer { condition.unlock() }
        while !finished { condition.wait() }
        return duration ?? 0
    }

    var isFinished: Bool {
        condition.lock()
        defer { condition.unlock() }
        return finished
    }

    /// Stops at the next chunk (the session is going away).
    func cancel() {
        condition.lock()
        cancelled = true
        condition.unlock()
    }

    private var isCancelled: Bool {
        condition.lock()
        defer { condition.unlock() }
        return cancelled
    }
}
