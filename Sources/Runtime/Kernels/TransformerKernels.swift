enum TransformerKernels {
    static func register(into table: inout [String: Kernel]) {
    }
}
