/// Structural checks every graph passes before it runs: each value defined once, every node input
/// and graph output defined, no cycles. Returns the graph with its nodes in topological order
/// (stable: an already ordered graph keeps its order).
extension Graph {
    public func verified() throws(GraphError) -> Graph {
        // Runs after every rewriting pass on graphs of ~7,000 nodes: sized maps, no per-call set of
        // initializer names, flat consumer lists (load time is mostly these passes).
        var producer: [String: Int] = [:]
        producer.reserveCapacity(nodes.count * 2)
        for (index, node) in nodes.enumerated() {
            for output in node.outputs where !output.isEmpty {
                if let earlier = producer[output] {
                    throw .duplicateOutput(value: output, nodes: [nodes[earlier].displayName, node.displayName])
                }
                producer[output] = index
            }
        }
        let inputNames = Set(inputs.map(\.name))
        func isExternal(_ name: String) -> Bool { initializers[name] != nil || inputNames.contains(name) }
        // An edge (consumer, producer) per distinct input a node produces (a node has a few inputs:
        // a scan is cheaper than a Set per node); graph inputs and initializers make no edge.
        var edges: [(consumer: Int, source: Int)] = []
        edges.reserveCapacity(nodes.count * 2)
        var undefined: [(node: String, input: String)] = []
        for (index, node) in nodes.enumerated() {
            for (j, input) in node.inputs.enumerated() where !input.isEmpty {
                guard let source = producer[input] else {
                    if !isExternal(input) { undefined.append((node.displayName, input)) }
                    continue
                }
                if !node.inputs[..<j].contains(input) { edges.append((index, source)) }
            }
        }
        if !undefined.isEmpty { throw .undefinedInputs(undefined) }
        for output in outputs where producer[output.name] == nil && !isExternal(output.name) {
            throw .undefinedGraphOutput(output.name)
        }

        // Kahn's algorithm, always taking the lowest-index ready node so order is stable. Consumers
        // of node i are consumers[start[i] ..< start[i + 1]], in increasing consumer index.
        var pending = [Int](repeating: 0, count: nodes.count)
        var start = [Int](repeating: 0, count: nodes.count + 1)
        for edge in edges {
            pending[edge.consumer] += 1
            start[edge.source + 1] += 1
        }
        for i in 0..<nodes.count { start[i + 1] += start[i] }
        var fill = start
        var consumers = [Int](repeating: 0, count: edges.count)
        for edge in edges {
            consumers[fill[edge.source]] = edge.consumer
            fill[edge.source] += 1
        }
        var ready = MinHeap(pending.indices.filter { pending[$0] == 0 })
        var order: [Int] = []
        order.reserveCapacity(nodes.count)
        while let next = ready.pop() {
            order.append(next)
            for consumer in consumers[start[next]..<start[next + 1]] {
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
