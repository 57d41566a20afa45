import CKernels

/// Process-wide allocator settings for inference.
public enum RuntimeMemory {
    /// Keeps freed heap memory for reuse instead of returning it to the kernel. Every kernel
    /// allocates its output (a prefill layer makes ~6 MB of tensors); with glibc's defaults, blocks
    /// above the (adaptive) mmap threshold are fresh mmaps and a heap top above the trim threshold
    /// is given back, so the next prefill page-faults the same memory in again (4 KiB pages,
    /// zeroed by the kernel): measured with `lpc bench --profile` (loaded machine, same run
    /// order), SwiGLU's 30 prefill nodes went from 13.5 to ~5 ms and Add's 61 from 5.5 to ~3 ms. Blocks up to 32 MiB (glibc's maximum threshold) now come
    /// from the heap, and up to 256 MiB of free heap top is kept. Peak RSS is unchanged (it is
    /// the peak of live tensors); RSS after a peak stays at it. Call once at process start,
    /// before allocating much. Returns whether glibc accepted the settings (false elsewhere).
    @discardableResult
    public static func retainFreedHeap() -> Bool {
        lpc_retain_freed_heap() == 1
    }
}
