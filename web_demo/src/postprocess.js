// From raw model outputs to detections, mirroring slfm/postprocess.py: score threshold, top-k, decode, per-label
// NMS, cross-class suppression, cap. Detections by descending score, boxes normalised to the network input.
import { DEFAULT_VARIANCES, decodeInto } from './codec.js';
import { f } from './f32.js';
import { argsortDescending, batchedNms, crossClassSuppress } from './nms.js';

/** Thresholds of slfm.postprocess.PostprocessConfig (defaults: the demo's). */
export const DEMO = Object.freeze({
  scoreThreshold: 0.5,
  nmsIou: 0.3,
  crossClassIou: 0.5, // face vs mask on the same person; <= 0 disables
  preNmsTopK: 5000,
  maxDetections: 750,
});

/**
 * @param loc SSD offsets [A * 4]
 * @param scores class probabilities [A * numClasses], column 0 background
 * @param priors anchors [A * 4] from anchors()
 * @returns [{box: [x1, y1, x2, y2], score, label}] (label 1 = face, 2 = mask)
 */
export function postprocess(loc, scores, numClasses, priors, variances = DEFAULT_VARIANCES, config = DEMO) {
  const cfg = { ...DEMO, ...config };
  const a = loc.length / 4;
  if (!Number.isInteger(a) || scores.length !== a * numClasses) {
    throw new Error(
      `expected loc [A, 4] and scores [A, ${numClasses}] with the same A, got ${loc.length} and ${scores.length} values`,
    );
  }
  if (priors.length !== loc.length) throw new Error(`${a} predictions but ${priors.length / 4} anchors: input size mismatch`);

  // Candidates in NumPy's nonzero order: anchor, then class.
  const thr = f(cfg.scoreThreshold);
  let anchorIdx = [];
  let cls = [];
  for (let i = 0; i < a; i++) {
    for (let c = 1; c < numClasses; c++) {
      if (scores[i * numClasses + c] > thr) {
        anchorIdx.push(i);
        cls.push(c - 1);
      }
    }
  }
  let conf = Float32Array.from(anchorIdx, (i, k) => scores[i * numClasses + cls[k] + 1]);
  if (conf.length > cfg.preNmsTopK) {
    const top = argsortDescending(conf).subarray(0, cfg.preNmsTopK);
    anchorIdx = Array.from(top, (t) => anchorIdx[t]);
    cls = Array.from(top, (t) => cls[t]);
    conf = Float32Array.from(top, (t) => conf[t]);
  }
  const n = conf.length;
  const boxes = new Float32Array(4 * n);
  for (let k = 0; k < n; k++) decodeInto(loc, 4 * anchorIdx[k], priors, 4 * anchorIdx[k], variances, boxes, 4 * k);
  const labels = Int32Array.from(cls, (c) => c + 1);

  let keep = batchedNms(boxes, conf, labels, cfg.nmsIou);
  let kb = select(boxes, keep);
  let ks = Float32Array.from(keep, (i) => conf[i]);
  let kl = Int32Array.from(keep, (i) => labels[i]);
  if (cfg.crossClassIou > 0) {
    keep = crossClassSuppress(kb, ks, kl, cfg.crossClassIou);
    kb = select(kb, keep);
    ks = Float32Array.from(keep, (i) => ks[i]);
    kl = Int32Array.from(keep, (i) => kl[i]);
  }
  const out = [];
  for (let i = 0; i < Math.min(ks.length, cfg.maxDetections); i++) {
    out.push({ box: Array.from(kb.subarray(4 * i, 4 * i + 4)), score: ks[i], label: kl[i] });
  }
  return out;
}

function select(boxes, idx) {
  return Float32Array.from({ length: 4 * idx.length }, (_, k) => boxes[4 * idx[k >> 2] + (k & 3)]);
}
