#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TensorCore

/// Elementwise ops: binary arithmetic and comparisons with multidirectional broadcasting, boolean
/// logic, Where, unary math, and Cast. The loops live in the `Elementwise*.swift` files beside
/// this one; this file only maps op types to them.
enum ElementwiseKernels {
    static func register(into table: inout [String: Kernel]) {
        registerArithmetic(into: &table)
        registerLogic(into: &table)
        registerUnary(into: &table)
        CastKernels.register(into: &table)
    }

    private static func registerArithmetic(into table: inout [String: Kernel]) {
        let binary: [(String, Arithmetic.Op)] = [("Add", .add), ("Sub", .sub), ("Mul", .mul), ("Div", .div)]
        for (name, op) in binary {
            table[name] = { ctx in [try Arithmetic.apply(op, ctx.input(0), ctx.input(1))] }
        }
        table["Mod"] = { ctx in
            [try Arithmetic.apply(.mod(fmod: (ctx.node.int("fmod") ?? 0) != 0), ctx.input(0), ctx.input(1))]
        }
        table["Pow"] = { ctx in [try Power.apply(ctx.input(0), ctx.input(1))] }
        table["Max"] = { ctx in [try Arithmetic.variadic(.max, ctx)] }
        table["Min"] = { ctx in [try Arithmetic.variadic(.min, ctx)] }
        table["Sum"] = { ctx in [try Arithmetic.variadic(.add, ctx)] }
    }

    private static func registerLogic(into table: inout [String: Kernel]) {
        let comparisons: [Logic.Comparison] = [.equal, .greater, .less, .lessOrEqual, .greaterOrEqual]
        for op in comparisons {
            table[op.rawValue] = { ctx in [try Logic.compare(op, ctx.input(0), ctx.input(1))] }
        }
        let connectives: [Logic.Connective] = [.and, .or, .xor]
        for op in connectives {
            table[op.rawValue] = { ctx in [try Logic.logical(op, ctx.input(0), ctx.input(1))] }
        }
        table["Not"] = { ctx in
            let x = try ctx.input(0)
            guard x.dtype == .bool else { throw KernelError("Not needs a bool input, got \(x.dtype)") }
            return [ElementwiseLoops.unary(x, Bool.self, Bool.self) { !$0 }]
        }
        table["Where"] = { ctx in [try Logic.select(ctx.input(0), ctx.input(1), ctx.input(2))] }
    }

    private static func registerUnary(into table: inout [String: Kernel]) {
        table["Sqrt"] = { ctx in [try Unary.floating("Sqrt", ctx.input(0), { $0.squareRoot() }, { $0.squareRoot() })] }
        table["Reciprocal"] = { ctx in [try Unary.floating("Reciprocal", ctx.input(0), { 1 / $0 }, { 1 / $0 })] }
        table["Exp"] = { ctx in [try Unary.floating("Exp", ctx.input(0), { expf($0) }, { exp($0) })] }
        table["Log"] = { ctx in [try Unary.floating("Log", ctx.input(0), { logf($0) }, { log($0) })] }
        table["Sigmoid"] = { ctx in [try Unary.floating("Sigmoid", ctx.input(0), { Unary.sigmoid($0) }, { Unary.sigmoid($0) })] }
        table["Tanh"] = { ctx in [try Unary.floating("Tanh", ctx.input(0), { tanhf($0) }, { tanh($0) })] }
        table["Erf"] = { ctx in [try Unary.floating("Erf", ctx.input(0), { erff($0) }, { erf($0) })] }
        table["Cos"] = { ctx in [try Unary.floating("Cos", ctx.input(0), { cosf($0) }, { cos($0) })] }
        table["Sin"] = { ctx in [try Unary.floating("Sin", ctx.input(0), { sinf($0) }, { sin($0) })] }
        table["Floor"] = { ctx in [try Unary.floating("Floor", ctx.input(0), { $0.rounded(.down) }, { $0.rounded(.down) })] }
        table["Ceil"] = { ctx in [try Unary.floating("Ceil", ctx.input(0), { $0.rounded(.up) }, { $0.rounded(.up) })] }
        table["Neg"] = { ctx in [try Unary.signed(.neg, ctx.input(0))] }
        table["Abs"] = { ctx in [try Unary.signed(.abs, ctx.input(0))] }
        table["Relu"] = { ctx in [try Unary.signed(.relu, ctx.input(0))] }
        table["IsNaN"] = { ctx in [try Unary.predicate("IsNaN", ctx.input(0)) { $0.isNaN }] }
        table["IsInf"] = { ctx in
            let negative = (ctx.node.int("detect_negative") ?? 1) != 0
            let positive = (ctx.node.int("detect_positive") ?? 1) != 0
            return [try Unary.predicate("IsInf", ctx.input(0)) { $0.isInfinite && ($0 > 0 ? positive : negative) }]
        }
        table["Gelu"] = { ctx in [try Unary.gelu(ctx.input(0), approximate: ctx.node.string("approximate") ?? "none")] }
    }
}
