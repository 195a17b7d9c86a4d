// SSD box decoding (variances 0.1 / 0.2), mirroring slfm/codec.py in float32 with NumPy's operation order.
import { f } from './f32.js';

export const DEFAULT_VARIANCES = Object.freeze([0.1, 0.2]);

/** Decodes loc[lo..lo+3] against priors[po..po+3] into (x1, y1, x2, y2) at out[oo..oo+3]. */
export function decodeInto(loc, lo, priors, po, variances, out, oo) {
  const v0 = f(variances[0]);
  const v1 = f(variances[1]);
  const pw = priors[po + 2];
  const ph = priors[po + 3];
  const cx = f(priors[po] + f(f(loc[lo] * v0) * pw));
  const cy = f(priors[po + 1] + f(f(loc[lo + 1] * v0) * ph));
  const w = f(pw * f(Math.exp(f(loc[lo + 2] * v1))));
  const h = f(ph * f(Math.exp(f(loc[lo + 3] * v1))));
  out[oo] = f(cx - f(w / 2));
  out[oo + 1] = f(cy - f(h / 2));
  out[oo + 2] = f(cx + f(w / 2));
  out[oo + 3] = f(cy + f(h / 2));
}

/** Decodes N rows: loc [N * 4] against priors [N * 4] -> boxes Float32Array [N * 4]. */
export function decode(loc, priors, variances = DEFAULT_VARIANCES) {
  if (loc.length !== priors.length || loc.length % 4 !== 0) {
    throw new Error(`loc ${loc.length} and priors ${priors.length} differ`);
  }
  const out = new Float32Array(loc.length);
  for (let i = 0; i < loc.length / 4; i++) decodeInto(loc, 4 * i, priors, 4 * i, variances, out, 4 * i);
  return out;
}
