package org.slfm.demo

/** Raw outputs of one frame as floats: `loc` [A * 4] SSD offsets and `scores` [A * C] class probabilities. */
class RawOutputs(val loc: FloatArray, val scores: FloatArray)

/** One inference runtime. Input: the letterboxed frame as ARGB ints (size x size). */
interface Backend : AutoCloseable {
    /** Shown on screen, e.g. "LiteRT XNNPACK int8". */
    val label: String

    fun run(pixels: IntArray): RawOutputs
}
