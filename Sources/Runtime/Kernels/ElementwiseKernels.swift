enum ElementwiseKernels {
    static func register(into table: inout [String: Kernel]) {
    }
}
