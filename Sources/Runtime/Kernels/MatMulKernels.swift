enum MatMulKernels {
    static func register(into table: inout [String: Kernel]) {
    }
}
