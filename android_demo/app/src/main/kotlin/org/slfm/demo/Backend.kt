package org.slfm.demo

/** Raw outputs of one frame as floats: `loc` [A * 4] SSD offsets and `scores` [A * C] class probabilities. */
class RawOutputs(val loc: FloatArray, val scores: FloatArray)

/** One inference runtime. Input: the letterboxed frame as ARGB ints (size x size). */
interface Backend : AutoCloseable {
    /** Shown on screen, e.g. "LiteRT XNNPACK int8". */
    val label: String

    fun run(pixels: IntArray): RawOutputs
}

/** Which output is which: `loc` ends in 4, `scores` in the class count (the graph may order them either way). */
internal fun outputOrder(lastDims: List<Int>, numClasses: Int): Pair<Int, Int> {
    require(lastDims.size == 2) { "the model has ${lastDims.size} outputs; expected 2 (loc, scores)" }
    val loc = lastDims.indexOf(4)
    val scores = lastDims.indexOf(numClasses)
    require(loc >= 0 && scores >= 0 && loc != scores) {
        "cannot tell loc from scores by shape (last dims $lastDims, $numClasses classes)"
    }
    return loc to scores
}
