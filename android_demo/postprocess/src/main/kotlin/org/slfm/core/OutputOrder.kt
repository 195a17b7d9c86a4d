package org.slfm.core

/**
 * Which graph output is `loc` and which is `scores`: the one rule of `slfm.core.output_order`.
 *
 * The sidecar's `output_indices` (positions of loc and scores) when recorded, checked against the shapes;
 * without it (older sidecars) loc is the one output ending in 4 and scores the one ending in the class count;
 * an ambiguous pair (4 classes) is an error, never a guess. Returns (loc position, scores position).
 */
object OutputOrder {
    fun of(lastDims: List<Int>, numClasses: Int, indices: List<Int>? = null): Pair<Int, Int> {
        require(lastDims.size == 2) { "the model has ${lastDims.size} outputs; expected 2 (loc, scores)" }
        if (indices != null) {
            require(indices.sorted() == listOf(0, 1)) { "output_indices $indices is not a permutation of [0, 1]" }
            val (loc, scores) = indices
            require(lastDims[loc] == 4 && lastDims[scores] == numClasses) {
                "output_indices say loc is output $loc and scores output $scores, but their last dims are $lastDims " +
                    "($numClasses classes): the sidecar does not belong to this model"
            }
            return loc to scores
        }
        val locs = lastDims.indices.filter { lastDims[it] == 4 }
        val scores = lastDims.indices.filter { lastDims[it] == numClasses }
        require(locs.size == 1 && scores.size == 1 && locs != scores) {
            "cannot tell loc from scores by shape (last dims $lastDims, $numClasses classes)"
        }
        return locs[0] to scores[0]
    }

    /** [of] with the class count and recorded indices of [meta]. */
    fun of(meta: ModelMeta, lastDims: List<Int>): Pair<Int, Int> {
        val indices = meta.outputIndices?.let { rec ->
            val byName = meta.outputs.zip(rec).toMap()
            listOf(byName.getValue("loc"), byName.getValue("scores"))
        }
        return of(lastDims, meta.numClasses, indices)
    }
}
