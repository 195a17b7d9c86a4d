package org.slfm.core

import kotlin.math.ceil

/**
 * Anchor (prior box) generation, mirroring `slfm/anchors.py`.
 *
 * Rows are (cx, cy, w, h) normalised to the input size, ordered by level, then row (y), then column (x),
 * then the level's min sizes. Values are computed in double and rounded to float, as NumPy does.
 */
object Anchors {
    val DEFAULT_MIN_SIZES: List<List<Int>> = listOf(listOf(16, 32), listOf(64, 128), listOf(256, 512))
    val DEFAULT_STEPS: List<Int> = listOf(8, 16, 32)

    fun featureSizes(height: Int, width: Int, steps: List<Int>): List<Pair<Int, Int>> =
        steps.map { s -> ceil(height.toDouble() / s).toInt() to ceil(width.toDouble() / s).toInt() }

    /** Anchors as a flat [A * 4] array; anchor `i` is at `4 * i`. */
    fun generate(
        height: Int,
        width: Int,
        minSizes: List<List<Int>> = DEFAULT_MIN_SIZES,
        steps: List<Int> = DEFAULT_STEPS,
    ): FloatArray {
        require(minSizes.size == steps.size) { "min sizes (${minSizes.size}) and steps (${steps.size}) differ" }
        val sizes = featureSizes(height, width, steps)
        val count = sizes.indices.sumOf { sizes[it].first * sizes[it].second * minSizes[it].size }
        val out = FloatArray(count * 4)
        var k = 0
        for ((level, hw) in sizes.withIndex()) {
            val step = steps[level]
            for (y in 0 until hw.first) {
                for (x in 0 until hw.second) {
                    val cx = ((x + 0.5) * step / width).toFloat()
                    val cy = ((y + 0.5) * step / height).toFloat()
                    for (s in minSizes[level]) {
                        out[k++] = cx
                        out[k++] = cy
                        out[k++] = (s.toDouble() / width).toFloat()
                        out[k++] = (s.toDouble() / height).toFloat()
                    }
                }
            }
        }
        return out
    }
}
