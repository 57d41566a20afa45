/// Structural checks every graph passes before it runs: each value defined once, every node input
/// and graph output defined, no cycles. Returns the graph with its nodes in topological order
/// (stable: an already ordered graph keeps its order).
extension Graph {
    public func verified() throws(GraphError) -> Graph {
        var producer: [String: Int] = [:]
        for (index, node) in nodes.enumerated() {
            for output in node.outputs where !output.isEmpty {
                if let earlier = producer[output] {
                    throw .duplicateOutput(value: output, nodes: [nodes[earlier].displayName, node.displayName])
                }
                producer[output] = index
            }
        }
        let external = Set(inputs.map(\.name)).union(initializers.keys)
        var undefined: [(node: String, input: String)] = []
        for node in nodes {
            for input in node.inputs where !input.isEmpty && producer[input] == nil && !external.contains(input) {
                undefined.append((node.displayName, input))
            }
        }
        if !undefined.isEmpty { throw .undefinedInputs(undefined) }
        for output in outputs where producer[output.name] == nil && !external.contains(output.name) {
            throw .undefinedGraphOutput(output.name)
        }

        // Kahn's algorithm, always taking the lowest-index ready node so order is stable.
        var pending = [Int](repeating: 0, count: nodes.count)
        var consumers = [[Int]](repeating: [], count: nodes.count)
        for (index, node) in nodes.enumerated() {
            // Each distinct input once (a node has a few: a scan is cheaper than a Set per node).
            for (j, input) in node.inputs.enumerated() where !input.isEmpty && !node.inputs[..<j].contains(input) {
                if let source = producer[input] {
                    pending[index] += 1
                    consumers[source].append(index)
                }
            }
        }
        var ready = MinHeap(pending.indices.filter { pending[$0] == 0 })
        var order: [Int] = []
        order.reserveCapacity(nodes.count)
        while let next = ready.pop() {
            order.append(next)
            for consumer in consumers[next] {
                pending[consumer] -= 1
                if pending[consumer] == 0 { ready.push(consumer) }
            }
        }
        if order.count < nodes.count {
            let stuck = nodes.indices.filter { pending[$0] > 0 }.map { nodes[$0].displayName }
            throw .cycle(nodes: stuck)
        }
        var sorted = self
        sorted.nodes = order.map { nodes[$0] }
        return sorted
    }
}

/// A small binary min-heap of Ints.
struct MinHeap {
    private var items: [Int] = []

    init(_ values: [Int]) {
        for value in values { push(value) }
    }

    mutating func push(_ value: Int) {
        items.append(value)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if items[parent] <= items[child] { break }
            items.swapAt(parent, child)
            child = parent
        }
    }

    mutating func pop() -> Int? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < items.count && items[left] < items[smallest] { smallest = left }
            if right < items.count && items[right] < items[smallest] { smallest = right }
            if smallest == parent { break }
            items.swapAt(parent, smallest)
            parent = smallest
        }
        return top
    }
}
