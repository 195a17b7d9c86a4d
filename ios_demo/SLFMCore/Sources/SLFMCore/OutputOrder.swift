/// Which graph output is `loc` and which is `scores`: the one rule of `slfm.core.output_order` (Kotlin
/// `OutputOrder`, JS `outputOrder`).
///
/// The sidecar's `output_indices` (positions of loc and scores) when recorded, checked against the shapes;
/// without it (older sidecars) loc is the one output ending in 4 and scores the one ending in the class count;
/// an ambiguous pair (4 classes) is an error, never a guess.
public enum OutputOrder {
    public enum OrderError: Error, Equatable, CustomStringConvertible {
        case invalid(String)
        public var description: String {
            switch self { case .invalid(let m): return m }
        }
    }

    /// (loc position, scores position) from each output's last dimension.
    public static func of(lastDims: [Int], numClasses: Int, indices: [Int]? = nil) throws -> (loc: Int, scores: Int) {
        guard lastDims.count == 2 else {
            throw OrderError.invalid("the model has \(lastDims.count) outputs; expected 2 (loc, scores)")
        }
        if let indices {
            guard indices.sorted() == [0, 1] else {
                throw OrderError.invalid("output_indices \(indices) is not a permutation of [0, 1]")
            }
            let (loc, scores) = (indices[0], indices[1])
            guard lastDims[loc] == 4, lastDims[scores] == numClasses else {
                throw OrderError.invalid(
                    "output_indices say loc is output \(loc) and scores output \(scores), but their last dims are "
                        + "\(lastDims) (\(numClasses) classes): the sidecar does not belong to this model")
            }
            return (loc, scores)
        }
        let locs = lastDims.indices.filter { lastDims[$0] == 4 }
        let scores = lastDims.indices.filter { lastDims[$0] == numClasses }
        guard locs.count == 1, scores.count == 1, locs != scores else {
            throw OrderError.invalid("cannot tell loc from scores by shape (last dims \(lastDims), \(numClasses) classes)")
        }
        return (locs[0], scores[0])
    }

    /// `of` with the class count and recorded indices of `meta`.
    public static func of(meta: ModelMeta, lastDims: [Int]) throws -> (loc: Int, scores: Int) {
        var indices: [Int]? = nil
        if let rec = meta.outputIndices, let l = meta.outputs.firstIndex(of: "loc"),
            let s = meta.outputs.firstIndex(of: "scores"), rec.count == meta.outputs.count
        {
            indices = [rec[l], rec[s]]
        }
        return try of(lastDims: lastDims, numClasses: meta.numClasses, indices: indices)
    }
}
