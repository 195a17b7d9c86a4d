package org.slfm.core

import kotlin.math.abs
import kotlin.math.floor
import kotlin.math.sign

/** (scale, zero point) of an int8 tensor, from the sidecar's `input_quant` / `output_quant`. */
data class QuantParams(val scale: Float, val zeroPoint: Int) {
    /** TFLite's affine quantization: clamp(round(x / scale) + zeroPoint), halves away from zero (`slfm.core.quantize`). */
    fun quantize(x: Float, qmin: Int = -128, qmax: Int = 127): Int {
        val y = x / scale
        val r = sign(y) * floor(abs(y) + 0.5f)
        return (r + zeroPoint).coerceIn(qmin.toFloat(), qmax.toFloat()).toInt()
    }

    /** x = (q - zeroPoint) * scale. */
    fun dequantize(q: Int): Float = (q - zeroPoint).toFloat() * scale

    /** Dequantizes a whole int8 output buffer. */
    fun dequantize(q: ByteArray): FloatArray = FloatArray(q.size) { dequantize(q[it].toInt()) }
}
