// int8 (de)quantization with the (scale, zero point) of the sidecar's input_quant / output_quant, as TFLite does it.
import { f } from './f32.js';

/** clamp(round(x / scale) + zeroPoint), halves away from zero, x / scale in float32 (slfm.core.quantize). */
export function quantize(x, scale, zeroPoint, qmin = -128, qmax = 127) {
  const y = f(f(x) / f(scale));
  const t = Math.trunc(y);
  const r = Math.abs(y - t) >= 0.5 ? t + Math.sign(y) : t; // exact: floor(|y| + 0.5) rounds 0.49999997 up
  return Math.min(Math.max(r + zeroPoint, qmin), qmax);
}

/** x = (q - zeroPoint) * scale, in float32. */
export function dequantize(q, scale, zeroPoint) {
  return f((q - zeroPoint) * f(scale));
}

/** A whole int8 output buffer -> Float32Array. */
export function dequantizeArray(q, scale, zeroPoint) {
  const s = f(scale);
  const out = new Float32Array(q.length);
  for (let i = 0; i < q.length; i++) out[i] = (q[i] - zeroPoint) * s; // the store rounds to float32
  return out;
}
