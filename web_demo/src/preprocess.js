// Network input from a letterboxed size x size RGBA image (a canvas's ImageData.data), mirroring
// slfm.core.normalize: BGR channels, (pixel - mean) * pixelScale in float32, in the artifact's layout (NCHW
// or NHWC), quantized when the graph takes int8.
import { f } from './f32.js';
import { quantize } from './quant.js';

const RGBA_OFFSET = [2, 1, 0]; // B, G, R in an RGBA pixel

/** Per channel (B, G, R), the model's input value of each byte 0..255: f(v - mean) * pixelScale in float32. */
function valueTables(meta) {
  const scale = f(meta.pixelScale);
  return [0, 1, 2].map((c) => Float32Array.from({ length: 256 }, (_, v) => f(v - meta.meanBgr[c]) * scale));
}

/** Fills `out` from RGBA bytes through one 256-entry table per channel, in the model's layout. */
function encodeWith(rgba, meta, tables, out) {
  const n = meta.imageSize * meta.imageSize;
  if (rgba.length !== 4 * n) throw new Error(`expected ${meta.imageSize}x${meta.imageSize} RGBA pixels, got ${rgba.length / 4}`);
  // NCHW: channel c of pixel p at c * n + p; NHWC: at 3 * p + c.
  const [stride, plane] = meta.layout === 'NCHW' ? [1, n] : [3, 1];
  for (let c = 0; c < 3; c++) {
    const table = tables[c];
    const src = RGBA_OFFSET[c];
    for (let p = 0, o = c * plane; p < n; p++, o += stride) out[o] = table[rgba[4 * p + src]];
  }
  return out;
}

/** Float32Array [1, 3, S, S] or [1, S, S, 3] in float32 from RGBA bytes. */
export function encodeFloat(rgba, meta, out = new Float32Array(3 * meta.imageSize * meta.imageSize)) {
  return encodeWith(rgba, meta, valueTables(meta), out);
}

/** The model's input tensor data (into `out` when given, reused across frames): float32, or int8 quantized with the sidecar's input_quant (the same value as
 * quantizeInput(encodeFloat(...)): the quantized byte is a function of the pixel byte alone). */
export function encodeInput(rgba, meta, out = null) {
  const n = 3 * meta.imageSize * meta.imageSize;
  if (meta.inputDtype !== 'int8') return encodeFloat(rgba, meta, out ?? new Float32Array(n));
  const { scale, zeroPoint } = meta.inputQuant;
  const tables = valueTables(meta).map((t) => Int8Array.from(t, (v) => quantize(v, scale, zeroPoint)));
  return encodeWith(rgba, meta, tables, out ?? new Int8Array(n));
}

/** An already normalised float32 input (e.g. from the parity harness) -> int8 with input_quant. */
export function quantizeInput(x, meta) {
  const { scale, zeroPoint } = meta.inputQuant;
  const out = new Int8Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = quantize(x[i], scale, zeroPoint);
  return out;
}

/** NCHW [3, S, S] float32 -> the model's layout (a copy only for NHWC). */
export function toLayout(nchw, meta) {
  if (meta.layout === 'NCHW') return nchw;
  const n = meta.imageSize * meta.imageSize;
  const out = new Float32Array(nchw.length);
  for (let c = 0; c < 3; c++) for (let p = 0; p < n; p++) out[3 * p + c] = nchw[c * n + p];
  return out;
}
