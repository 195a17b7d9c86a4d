package org.slfm.demo

import org.pytorch.executorch.EValue
import org.pytorch.executorch.Module
import org.pytorch.executorch.Tensor
import org.slfm.core.InputEncoder
import org.slfm.core.ModelMeta
import org.slfm.core.OutputOrder

/** ExecuTorch runtime (XNNPACK-delegated .pte, float input). The .pte must be a file: see [ModelFiles]. */
class ExecuTorchBackend(path: String, private val meta: ModelMeta) : Backend {
    private val module = Module.load(path)
    private val encoder = InputEncoder(meta)
    private val shape = meta.imageSize.toLong().let { s ->
        if (meta.layout == "NCHW") longArrayOf(1, 3, s, s) else longArrayOf(1, s, s, 3)
    }
    private val buffer = FloatArray(3 * meta.imageSize * meta.imageSize)

    override val label = "ExecuTorch XNNPACK ${meta.precision}"

    init {
        require(meta.inputDtype == "float32") { "ExecuTorch demo path takes float input, model says ${meta.inputDtype}" }
    }

    override fun run(pixels: IntArray): RawOutputs {
        val x = Tensor.fromBlob(encoder.encodeFloat(pixels, buffer), shape)
        val out = module.forward(EValue.from(x)).map { it.toTensor() }
        val (loc, scores) = OutputOrder.of(meta, out.map { it.shape().last().toInt() })
        return RawOutputs(out[loc].dataAsFloatArray, out[scores].dataAsFloatArray)
    }

    override fun close() = module.destroy()
}
