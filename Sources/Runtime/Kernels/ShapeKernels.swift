enum ShapeKernels {
    static func register(into table: inout [String: Kernel]) {
    }
}
