package org.slfm.core

import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue

/** Hand-made cases for what the golden vectors do not pin down: ties, empties, bad input, the encoder. */
object UnitTests {
    fun all(): List<TestCase> = listOf(
        TestCase("argsort ties keep lower index first") {
            assertContentEquals(intArrayOf(1, 3, 0, 2), Nms.argsortDescending(floatArrayOf(0.5f, 0.9f, 0.5f, 0.9f)))
        },
        TestCase("nms equal scores: lower index wins") {
            val boxes = floatArrayOf(0f, 0f, 1f, 1f, 0f, 0f, 1f, 1f)
            assertContentEquals(intArrayOf(0), Nms.nms(boxes, floatArrayOf(0.7f, 0.7f), 0.3f))
        },
        TestCase("batched nms keeps overlapping boxes of different labels") {
            val boxes = floatArrayOf(0f, 0f, 1f, 1f, 0f, 0f, 1f, 1f)
            assertContentEquals(intArrayOf(1, 0), Nms.batchedNms(boxes, floatArrayOf(0.6f, 0.8f), intArrayOf(1, 2), 0.3f))
            assertContentEquals(intArrayOf(1), Nms.crossClassSuppress(boxes, floatArrayOf(0.6f, 0.8f), intArrayOf(1, 2), 0.5f))
        },
        TestCase("empty inputs") {
            assertEquals(0, Nms.batchedNms(FloatArray(0), FloatArray(0), IntArray(0), 0.3f).size)
            val pri = Anchors.generate(32, 32)
            val a = pri.size / 4
            assertEquals(emptyList(), postprocess(FloatArray(4 * a), FloatArray(3 * a), 3, pri))
        },
        TestCase("postprocess rejects a size mismatch") {
            val pri = Anchors.generate(32, 32)
            assertFailsWith<IllegalArgumentException> { postprocess(FloatArray(8), FloatArray(6), 3, pri) }
        },
        TestCase("anchors at 640: 16800") { assertEquals(16800 * 4, Anchors.generate(640, 640).size) },
        TestCase("json rejects malformed text") {
            for (bad in listOf("{", "[1,]", "{\"a\" 1}", "tru", "1 2", "\"x")) {
                assertFailsWith<IllegalArgumentException>(bad) { Json.parse(bad) }
            }
            assertEquals(mapOf("a" to listOf(1.0, "é\n", null, true)), Json.parse("{\"a\": [1, \"\\u00e9\\n\", null, true]}"))
        },
        TestCase("metadata with another schema is refused") {
            val e = assertFailsWith<IllegalArgumentException> { ModelMeta.parse("{\"schema\": \"other/9\"}") }
            assertTrue("slfm-artifact/1" in e.message!!)
        },
        TestCase("input encoder: BGR minus mean, NCHW float and NHWC int8") {
            val base = ModelMeta.parse(sampleMeta(layout = "NCHW"))
            val px = IntArray(base.imageSize * base.imageSize) { 0xFF000000.toInt() or (200 shl 16) or (100 shl 8) or 50 }
            val f = InputEncoder(base).encodeFloat(px)
            val n = px.size
            assertEquals(50f - 104f, f[0])
            assertEquals(100f - 117f, f[n])
            assertEquals(200f - 123f, f[2 * n])
            val q = InputEncoder(ModelMeta.parse(sampleMeta(layout = "NHWC", quant = "[0.5, 3]"))).encodeInt8(px)
            assertContentEquals(byteArrayOf(-105, -31, 127), q.copyOfRange(0, 3))
        },
    )

    private fun sampleMeta(layout: String, quant: String = "null") = """
        {"schema": "slfm-artifact/1", "format": "tflite", "precision": "int8", "image_size": 32, "layout": "$layout",
         "input_dtype": "int8", "input_quant": $quant, "output_quant": {}, "color": "BGR",
         "mean_bgr": [104.0, 117.0, 123.0], "pixel_scale": 1.0, "outputs": ["loc", "scores"],
         "classes": ["background", "face", "mask"], "min_sizes": [[16, 32], [64, 128], [256, 512]],
         "steps": [8, 16, 32], "variances": [0.1, 0.2], "num_anchors": 0, "score_threshold": 0.5,
         "nms_iou": 0.3, "cross_class_iou": 0.5}
    """.trimIndent()
}
