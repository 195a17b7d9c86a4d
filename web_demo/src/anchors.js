// Anchor (prior box) generation, mirroring slfm/anchors.py.
//
// Rows are (cx, cy, w, h) normalised to the input size, ordered by level, then row (y), then column (x), then the
// level's min sizes. Values are computed in double and rounded to float32, as NumPy does.

export const DEFAULT_MIN_SIZES = Object.freeze([[16, 32], [64, 128], [256, 512]]);
export const DEFAULT_STEPS = Object.freeze([8, 16, 32]);

export function featureSizes(height, width, steps) {
  return steps.map((s) => [Math.ceil(height / s), Math.ceil(width / s)]);
}

/** Anchors as a flat Float32Array [A * 4]; anchor i is at 4 * i. */
export function anchors(height, width, minSizes = DEFAULT_MIN_SIZES, steps = DEFAULT_STEPS) {
  if (minSizes.length !== steps.length) {
    throw new Error(`min sizes (${minSizes.length}) and steps (${steps.length}) differ`);
  }
  const sizes = featureSizes(height, width, steps);
  const count = sizes.reduce((n, [fh, fw], l) => n + fh * fw * minSizes[l].length, 0);
  const out = new Float32Array(count * 4);
  let k = 0;
  sizes.forEach(([fh, fw], level) => {
    const step = steps[level];
    for (let y = 0; y < fh; y++) {
      for (let x = 0; x < fw; x++) {
        const cx = ((x + 0.5) * step) / width;
        const cy = ((y + 0.5) * step) / height;
        for (const s of minSizes[level]) {
          out[k++] = cx;
          out[k++] = cy;
          out[k++] = s / width;
          out[k++] = s / height;
        }
      }
    }
  });
  return out;
}
