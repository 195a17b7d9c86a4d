package org.slfm.core

import kotlin.math.abs
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertTrue

/** The port against the Python definitions, through the golden vectors. */
class GoldenTests(private val g: Golden) {
    fun all(): List<TestCase> = listOf(
        TestCase("anchors", ::anchors),
        TestCase("letterbox", ::letterbox),
        TestCase("decode", ::decode),
        TestCase("nms", ::nms),
        TestCase("quant", ::quant),
        TestCase("sidecar", ::sidecar),
        TestCase("encode", ::encode),
        TestCase("outputs", ::outputs),
    ) + g.postprocessFiles().map { f -> TestCase("postprocess ${f.removeSuffix(".json")}") { postprocessFile(f) } }

    private fun assertClose(want: FloatArray, got: FloatArray, tol: Float, what: String) {
        assertEquals(want.size, got.size, "$what: length")
        for (i in want.indices) {
            val t = tol * maxOf(1f, abs(want[i]))
            assertTrue(abs(want[i] - got[i]) <= t, "$what[$i]: want ${want[i]}, got ${got[i]}")
        }
    }

    private fun anchors() {
        for (c in g.load("anchors.json")["cases"].asList().map { it.asMap() }) {
            val a = Anchors.generate(c.num("height").toInt(), c.num("width").toInt())
            assertEquals(c.num("count").toInt(), a.size / 4, "anchor count")
            val idx = c.list("indices").ints()
            val rows = c["rows"].rows()
            for ((k, i) in idx.withIndex()) {
                assertContentEquals(rows.copyOfRange(4 * k, 4 * k + 4), a.copyOfRange(4 * i, 4 * i + 4), "anchor $i")
            }
        }
    }

    private fun letterbox() {
        for (c in g.load("letterbox.json")["cases"].asList().map { it.asMap() }) {
            val lb = Letterbox.of(c.num("height").toInt(), c.num("width").toInt(), c.num("size").toInt())
            assertEquals(c.num("scale"), lb.scale, "scale of $c")
            assertEquals(c.num("resized_width").toInt(), lb.resizedWidth, "resized width of $c")
            assertEquals(c.num("resized_height").toInt(), lb.resizedHeight, "resized height of $c")
        }
    }

    private fun decode() {
        for (c in g.load("decode.json")["cases"].asList().map { it.asMap() }) {
            val boxes = Codec.decode(c["loc"].rows(), c["priors"].rows(), c.list("variances").floats())
            assertClose(c["boxes"].rows(), boxes, 1e-6f, "decode ${c["image"]}")
        }
    }

    private fun nms() {
        for (c in g.load("nms.json")["cases"].asList().map { it.asMap() }) {
            val boxes = c["boxes"].rows()
            val scores = c.list("scores").floats()
            val labels = c.list("labels").ints()
            val thr = c.num("iou_threshold").toFloat()
            val want = c.obj("expected")
            val what = "${c["image"]} @ $thr"
            assertContentEquals(want.list("nms").ints(), Nms.nms(boxes, scores, thr), "nms $what")
            assertContentEquals(want.list("batched_nms").ints(), Nms.batchedNms(boxes, scores, labels, thr), "batched $what")
            assertContentEquals(want.list("cross_class").ints(), Nms.crossClassSuppress(boxes, scores, labels, thr), "cross $what")
            val n = scores.size
            val ious = FloatArray(3 * n) { Nms.iou(boxes, it / n, boxes, it % n) }
            assertClose(want["iou_first_rows"].rows(), ious, 1e-6f, "iou $what")
        }
    }

    private fun quant() {
        for (c in g.load("quant.json")["cases"].asList().map { it.asMap() }) {
            val q = QuantParams(c.num("scale").toFloat(), c.num("zero_point").toInt())
            val want = c.obj("expected")
            val quantized = c.list("values").floats().map { q.quantize(it) }.toIntArray()
            assertContentEquals(want.list("quantized").ints(), quantized, "quantize ${c["name"]}")
            val bytes = c.list("q").ints().map { it.toByte() }.toByteArray()
            assertContentEquals(want.list("dequantized").floats(), q.dequantize(bytes), "dequantize ${c["name"]}")
        }
    }

    private fun sidecar() {
        val m = ModelMeta.parse(g.text("sidecar_int8.tflite.json"))
        assertEquals("tflite", m.format)
        assertEquals("NHWC", m.layout)
        assertEquals(QuantParams(1.0f, -11), m.inputQuant)
        assertEquals(QuantParams(0.00390625f, -128), m.outputQuant["scores"])
        assertEquals(m.numAnchors, m.anchors().size / 4)
        assertEquals(listOf("background", "face", "mask"), m.classes)
        assertEquals(PostprocessConfig(), m.postprocess)
        assertEquals(listOf(1, 0), m.outputIndices)
        assertEquals(1 to 0, OutputOrder.of(m, listOf(3, 4)))
    }

    /** Pixels -> model input under sidecars with pixel_scale != 1, int8 ties and both layouts. */
    private fun encode() {
        for (c in g.load("encode.json")["cases"].asList().map { it.asMap() }) {
            val meta = ModelMeta.fromMap(c["sidecar"].asMap())
            val bgr = c.list("pixels").ints()
            val argb = IntArray(bgr.size / 3) { p -> (0xFF shl 24) or (bgr[3 * p + 2] shl 16) or (bgr[3 * p + 1] shl 8) or bgr[3 * p] }
            val enc = InputEncoder(meta)
            val name = c["name"]
            if (meta.inputDtype == "int8") {
                val got = enc.encodeInt8(argb).map { it.toInt() }.toIntArray()
                assertContentEquals(c.list("expected").ints(), got, "encode $name")
            } else {
                assertContentEquals(c.list("expected").floats(), enc.encodeFloat(argb), "encode $name")
            }
        }
    }

    private fun outputs() {
        for (c in g.load("outputs.json")["cases"].asList().map { it.asMap() }) {
            val dims = c.list("last_dims").ints().toList()
            val indices = (c["indices"] as? List<*>)?.map { (it as Double).toInt() }
            val got = runCatching { OutputOrder.of(dims, c.num("num_classes").toInt(), indices) }.getOrNull()
            val want = (c["expected"] as? List<*>)?.map { (it as Double).toInt() }?.let { it[0] to it[1] }
            assertEquals(want, got, "output order $c")
        }
    }

    private fun postprocessFile(name: String) {
        val c = g.load(name)
        val size = c.num("input_size").toInt()
        val minSizes = c.list("min_sizes").map { it.asList().ints().toList() }
        val all = Anchors.generate(size, size, minSizes, c.list("steps").ints().toList())
        val idx = c.list("anchor_indices").ints()
        val priors = FloatArray(4 * idx.size) { all[4 * idx[it / 4] + it % 4] }
        val loc = c["loc"].rows()
        val scores = c["scores"].rows()
        val lb = Letterbox.of(c.num("image_height").toInt(), c.num("image_width").toInt(), size)
        assertEquals(c.num("scale"), lb.scale, "letterbox scale")
        for ((key, cfgAny) in c.obj("configs")) {
            val k = cfgAny.asMap()
            val cfg = PostprocessConfig(
                scoreThreshold = k.num("score_threshold").toFloat(),
                nmsIou = k.num("nms_iou").toFloat(),
                crossClassIou = k.num("cross_class_iou").toFloat(),
                preNmsTopK = k.num("pre_nms_top_k").toInt(),
                maxDetections = k.num("max_detections").toInt(),
            )
            val dets = postprocess(loc, scores, 3, priors, c.list("variances").floats(), cfg)
            val want = c.obj("expected").obj(key)
            val what = "$name/$key"
            assertContentEquals(want.list("labels").ints(), dets.map { it.label }.toIntArray(), "$what labels")
            assertContentEquals(want.list("scores").floats(), dets.map { it.score }.toFloatArray(), "$what scores")
            assertClose(want["boxes"].rows(), dets.flatMap { listOf(it.x1, it.y1, it.x2, it.y2) }.toFloatArray(), 1e-5f, "$what boxes")
            val px = dets.map { lb.toImagePixels(it, c.num("image_height").toInt(), c.num("image_width").toInt()) }
            assertClose(want["pixel_boxes"].rows(), px.flatMap { listOf(it.x1, it.y1, it.x2, it.y2) }.toFloatArray(), 1e-5f, "$what pixels")
        }
    }
}
