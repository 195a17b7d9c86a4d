package org.slfm.core

/**
 * The artifact contract (`slfm/artifact.py`, schema `slfm-artifact/1`), read from the `<model>.json` sidecar
 * shipped beside the model: input size, layout and quantization, normalisation, anchors and thresholds.
 */
data class ModelMeta(
    val format: String,
    val precision: String,
    val imageSize: Int,
    val layout: String,
    val inputDtype: String,
    val inputQuant: QuantParams?,
    val outputQuant: Map<String, QuantParams>,
    val meanBgr: FloatArray,
    val pixelScale: Float,
    val outputs: List<String>,
    /** Each of [outputs]' position among the graph's outputs; null in sidecars older than the field. */
    val outputIndices: List<Int>?,
    val classes: List<String>,
    val minSizes: List<List<Int>>,
    val steps: List<Int>,
    val variances: FloatArray,
    val numAnchors: Int,
    val postprocess: PostprocessConfig,
) {
    val numClasses: Int get() = classes.size

    /** The anchors for [imageSize], checked against the metadata's count. */
    fun anchors(): FloatArray {
        val a = Anchors.generate(imageSize, imageSize, minSizes, steps)
        check(numAnchors == 0 || a.size / 4 == numAnchors) {
            "metadata says $numAnchors anchors but ${a.size / 4} were generated for $imageSize"
        }
        return a
    }

    companion object {
        const val SCHEMA = "slfm-artifact/1"

        fun parse(text: String): ModelMeta {
            @Suppress("UNCHECKED_CAST")
            val d = Json.parse(text) as? Map<String, Any?> ?: throw IllegalArgumentException("metadata is not a JSON object")
            return fromMap(d)
        }

        /** A sidecar already parsed into maps and lists (as [Json.parse] returns it). */
        fun fromMap(d: Map<String, Any?>): ModelMeta {
            val schema = d["schema"]
            require(schema == SCHEMA) { "artifact metadata schema '$schema' is not '$SCHEMA'" }
            val layout = d.str("layout")
            require(layout == "NCHW" || layout == "NHWC") { "unknown input layout '$layout'" }
            require(d.str("color") == "BGR") { "only BGR models are supported, got '${d["color"]}'" }
            fun quant(v: Any?): QuantParams? = (v as? List<*>)?.let { QuantParams((it[0] as Double).toFloat(), (it[1] as Double).toInt()) }
            val defaults = PostprocessConfig()
            return ModelMeta(
                format = d.str("format"),
                precision = d.str("precision"),
                imageSize = d.num("image_size").toInt(),
                layout = layout,
                inputDtype = d.str("input_dtype"),
                inputQuant = quant(d["input_quant"]),
                outputQuant = d.obj("output_quant").mapValues { (k, v) -> quant(v) ?: throw IllegalArgumentException("bad output_quant '$k'") },
                meanBgr = d.list("mean_bgr").floats(),
                pixelScale = d.num("pixel_scale").toFloat(),
                outputs = d.list("outputs").map { it as String },
                outputIndices = (d["output_indices"] as? List<*>)?.map { (it as Double).toInt() },
                classes = d.list("classes").map { it as String },
                minSizes = d.list("min_sizes").map { (it as List<Any?>).ints().toList() },
                steps = d.list("steps").ints().toList(),
                variances = d.list("variances").floats(),
                numAnchors = d.num("num_anchors").toInt(),
                postprocess = defaults.copy(
                    scoreThreshold = d.num("score_threshold").toFloat(),
                    nmsIou = d.num("nms_iou").toFloat(),
                    crossClassIou = d.num("cross_class_iou").toFloat(),
                ),
            )
        }
    }
}
