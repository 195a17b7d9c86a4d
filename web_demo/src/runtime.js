// LiteRT.js: loads the WASM runtime once (served from this page's folder, never from a CDN), compiles a .tflite
// and runs it on one input. Outputs are told apart by shape (loc has 4 columns); int8 ones are dequantized with
// the sidecar's output_quant.
//
// - 'wasm' (XNNPACK, one thread): LiteRT.js's Tensor class handles float32/int32/uint8 only, so the model is
//   driven through its WASM bindings (the calls its CompiledModel makes), which take any element type: fp32 and
//   fully int8 artifacts go through one path.
// - 'webgpu': LiteRT.js's CompiledModel and Tensor (GPU buffers in and out), float32 artifacts only. Compiling for
//   WebGPU reads GPU buffers while it runs, which needs the JSPI build of the runtime (loaded with {jspi: true}).
import { Tensor, loadLiteRt } from '@litertjs/core';

import { metaOutputOrder } from './outputs.js';
import { dequantizeArray } from './quant.js';

const ELEMENT = { 1: 'float32', 9: 'int8' }; // litert::ElementType values this app handles
const ARRAYS = { float32: Float32Array, int8: Int8Array };
let loaded = null;

/** The LiteRT.js runtime, loaded once from `wasmDir`; the first call chooses the build (jspi or not). */
export async function liteRt(wasmDir, { jspi = false } = {}) {
  loaded ??= { jspi, promise: loadLiteRt(wasmDir, jspi ? { jspi: true } : {}) };
  return loaded.promise;
}

function vector(v) {
  const out = [];
  for (let i = 0; i < v.size(); i++) out.push(v.get(i));
  v.delete();
  return out;
}

function tensorInfo(type) {
  const layout = type.layout();
  const info = { shape: vector(layout.dimensions()), dtype: ELEMENT[type.elementType().value], bytes: type.bytes() };
  layout.delete();
  type.delete();
  return info;
}

/** 'wasm': the WASM bindings, any element type, host memory in and out. */
class WasmBackend {
  static async create(rt, bytes) {
    const w = rt.liteRtWasm;
    const env = rt.getDefaultEnvironment();
    const ptr = w._malloc(bytes.byteLength);
    w.HEAPU8.set(bytes, ptr);
    const model = w.loadModel(env.liteRtEnvironment, ptr, bytes.byteLength);
    const options = { environment: env, accelerator: 'wasm', cpuOptions: { numThreads: 1 }, gpuOptions: {}, webNNOptions: {} };
    const compiled = await w.compileModel(env.liteRtEnvironment, model, options);
    return new WasmBackend(w, env, model, compiled, ptr);
  }

  constructor(w, env, model, compiled, ptr) {
    Object.assign(this, { w, env, model, compiled, ptr });
    this.input = tensorInfo(model.getInputTensorType(0, 0));
    const sig = model.getSignature(0);
    const n = vector(sig.outputNames()).length;
    sig.delete();
    this.outputs = Array.from({ length: n }, (_, i) => tensorInfo(model.getOutputTensorType(0, i)));
  }

  async run(x) {
    const w = this.w;
    const buf = w.LiteRtTensorBuffer.createManaged(
      this.env.liteRtEnvironment, w.LiteRtTensorBufferType.HOST_MEMORY, this.model.getInputTensorType(0, 0), x.byteLength);
    try {
      w.HEAPU8.set(new Uint8Array(x.buffer, x.byteOffset, x.byteLength), buf.lock(w.LiteRtTensorBufferLockMode.WRITE));
      buf.unlock();
      const outs = await this.compiled.run(0, [buf]);
      return outs.map((o, i) => {
        try {
          const p = o.lock(w.LiteRtTensorBufferLockMode.READ);
          const bytes = w.HEAPU8.slice(p, p + this.outputs[i].bytes);
          o.unlock();
          return new ARRAYS[this.outputs[i].dtype](bytes.buffer);
        } finally {
          o.delete();
        }
      });
    } finally {
      buf.delete();
    }
  }

  delete() {
    this.compiled.delete();
    this.model.delete();
    this.w._free(this.ptr);
  }
}

/** 'webgpu': LiteRT.js's CompiledModel (float32 tensors only). */
class WebGpuBackend {
  static async create(rt, bytes) {
    const adapter = await globalThis.navigator?.gpu?.requestAdapter();
    if (!adapter) throw new Error('WebGPU requested but the browser has no WebGPU adapter');
    rt.setWebGpuDevice(await adapter.requestDevice());
    return new WebGpuBackend(await rt.loadAndCompile(bytes, { accelerator: 'webgpu' }));
  }

  constructor(compiled) {
    this.compiled = compiled;
    const info = (d) => ({ shape: Array.from(d.shape), dtype: d.dtype, bytes: d.shape.reduce((a, b) => a * b, 4) });
    this.input = info(compiled.getInputDetails()[0]);
    this.outputs = compiled.getOutputDetails().map(info);
  }

  async run(x) {
    const input = new Tensor(x, this.input.shape);
    try {
      const outs = await this.compiled.run(input);
      const arrays = [];
      for (const o of outs) {
        const host = await o.moveTo('wasm');
        arrays.push(host.toTypedArray());
        host.delete();
      }
      return arrays;
    } finally {
      input.delete();
    }
  }

  delete() {
    this.compiled.delete();
  }
}

const BACKENDS = { wasm: WasmBackend, webgpu: WebGpuBackend };

export class Detector {
  /** Compiles `bytes` (the .tflite) for `accelerator` ('wasm' or 'webgpu'); `meta` is its parsed sidecar. */
  static async create(wasmDir, bytes, meta, accelerator = 'wasm') {
    const Backend = BACKENDS[accelerator];
    if (!Backend) throw new Error(`unknown accelerator '${accelerator}': use ${Object.keys(BACKENDS).join(' or ')}`);
    if (accelerator === 'webgpu' && meta.inputDtype !== 'float32') {
      throw new Error(`webgpu runs float32 artifacts only (LiteRT.js's Tensor has no ${meta.inputDtype} type)`);
    }
    const rt = await liteRt(wasmDir, { jspi: accelerator === 'webgpu' });
    return new Detector(await Backend.create(rt, bytes), meta, accelerator);
  }

  constructor(backend, meta, accelerator) {
    Object.assign(this, { backend, meta, accelerator });
    this.input = backend.input;
    const outs = backend.outputs;
    const last = (o) => o.shape[o.shape.length - 1];
    try {
      [this.locIndex, this.scoresIndex] = metaOutputOrder(meta, outs.map(last));
    } catch (e) {
      throw new Error(`outputs ${JSON.stringify(outs.map((o) => o.shape))}: ${e.message}`);
    }
    if (this.input.dtype !== meta.inputDtype) {
      throw new Error(`the model takes ${this.input.dtype} input but its sidecar says ${meta.inputDtype}`);
    }
    this.numClasses = last(outs[this.scoresIndex]);
  }

  /** Runs one input (Float32Array or Int8Array in the model's layout) -> {loc, scores} as Float32Array. */
  async run(x) {
    if (!(x instanceof ARRAYS[this.input.dtype]) || x.byteLength !== this.input.bytes) {
      throw new Error(`input must be a ${this.input.dtype} array of ${this.input.bytes} bytes`);
    }
    const arrays = await this.backend.run(x);
    return { loc: this.dequantized(arrays[this.locIndex], 'loc'), scores: this.dequantized(arrays[this.scoresIndex], 'scores') };
  }

  dequantized(a, name) {
    if (a instanceof Float32Array) return a;
    const q = this.meta.outputQuant[name];
    if (!q) throw new Error(`int8 output '${name}' without output_quant in the sidecar`);
    return dequantizeArray(a, q.scale, q.zeroPoint);
  }

  delete() {
    this.backend.delete();
  }
}
