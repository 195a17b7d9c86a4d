package org.slfm.demo

import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.MappedByteBuffer
import org.slfm.core.InputEncoder
import org.slfm.core.ModelMeta
import org.slfm.core.OutputOrder
import org.slfm.core.QuantParams
import org.tensorflow.lite.DataType
import org.tensorflow.lite.Interpreter

/**
 * LiteRT (TFLite) interpreter with the XNNPACK CPU delegate. Handles float32 graphs and fully int8 graphs
 * (input quantized and outputs dequantized with the sidecar's `input_quant` / `output_quant`).
 */
class LiteRtBackend(model: MappedByteBuffer, private val meta: ModelMeta, threads: Int = 4) : Backend {
    private val interpreter = Interpreter(model, Interpreter.Options().setNumThreads(threads).setUseXNNPACK(true))
    private val encoder = InputEncoder(meta)
    private val int8Input = interpreter.getInputTensor(0).dataType() == DataType.INT8
    private val n = 3 * meta.imageSize * meta.imageSize
    private val input: ByteBuffer = ByteBuffer.allocateDirect(if (int8Input) n else 4 * n).order(ByteOrder.nativeOrder())
    private val floatInput = FloatArray(n)
    private val byteInput = ByteArray(n)
    private val locIndex: Int
    private val scoresIndex: Int
    private val outputs: Map<Int, ByteBuffer>

    override val label = "LiteRT XNNPACK ${meta.precision}"

    init {
        val shapes = (0 until interpreter.outputTensorCount).map { interpreter.getOutputTensor(it).shape() }
        val order = OutputOrder.of(meta, shapes.map { it.last() })
        locIndex = order.first
        scoresIndex = order.second
        outputs = (0 until interpreter.outputTensorCount).associateWith {
            ByteBuffer.allocateDirect(interpreter.getOutputTensor(it).numBytes()).order(ByteOrder.nativeOrder())
        }
        if (int8Input) requireNotNull(meta.inputQuant) { "int8 model input but no input_quant in model.tflite.json" }
    }

    override fun run(pixels: IntArray): RawOutputs {
        input.rewind()
        if (int8Input) input.put(encoder.encodeInt8(pixels, byteInput)) else input.asFloatBuffer().put(encoder.encodeFloat(pixels, floatInput))
        input.rewind()
        outputs.values.forEach { it.rewind() }
        interpreter.runForMultipleInputsOutputs(arrayOf(input), outputs)
        return RawOutputs(read(locIndex, "loc"), read(scoresIndex, "scores"))
    }

    private fun read(index: Int, name: String): FloatArray {
        val buf = outputs.getValue(index).also { it.rewind() }
        val tensor = interpreter.getOutputTensor(index)
        return when (tensor.dataType()) {
            DataType.FLOAT32 -> FloatArray(buf.remaining() / 4).also { buf.asFloatBuffer().get(it) }
            DataType.INT8 -> {
                val q = meta.outputQuant[name]
                    ?: tensor.quantizationParams().let { QuantParams(it.scale, it.zeroPoint) }
                ByteArray(buf.remaining()).also { buf.get(it) }.let(q::dequantize)
            }
            else -> error("unsupported output type ${tensor.dataType()} for $name")
        }
    }

    override fun close() = interpreter.close()
}
