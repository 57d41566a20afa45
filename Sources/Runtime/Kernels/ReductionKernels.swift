enum ReductionKernels {
    static func register(into table: inout [String: Kernel]) {
    }
}
