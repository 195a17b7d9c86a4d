// IoU, greedy NMS, per-label NMS and cross-class suppression, mirroring slfm/nms.py: IoU in float32 with NumPy's
// operation order, so that keep/drop decisions are Python's. Boxes are flat [N * 4] (x1, y1, x2, y2).
import { f } from './f32.js';

const EPS = f(1e-12);

function area(b, i) {
  return f(Math.max(f(b[4 * i + 2] - b[4 * i]), 0) * Math.max(f(b[4 * i + 3] - b[4 * i + 1]), 0));
}

/** IoU of box i of a and box j of b. */
export function iou(a, i, b, j) {
  const w = Math.max(f(Math.min(a[4 * i + 2], b[4 * j + 2]) - Math.max(a[4 * i], b[4 * j])), 0);
  const h = Math.max(f(Math.min(a[4 * i + 3], b[4 * j + 3]) - Math.max(a[4 * i + 1], b[4 * j + 1])), 0);
  const inter = f(w * h);
  const union = f(f(area(a, i) + area(b, j)) - inter);
  return union > 0 ? f(inter / Math.max(union, EPS)) : 0;
}

/** Indices by descending score; equal scores keep the lower index first (NumPy's stable argsort). */
export function argsortDescending(scores) {
  return Int32Array.from(scores.keys()).sort((i, j) => scores[j] - scores[i] || i - j);
}

/** Greedy suppression in descending score order: drops(kept, candidate, iou) removes a candidate. */
function greedy(boxes, scores, drops) {
  const order = argsortDescending(scores);
  const keep = new Uint8Array(order.length).fill(1);
  for (let r = 0; r < order.length; r++) {
    if (!keep[r]) continue;
    for (let q = r + 1; q < order.length; q++) {
      if (keep[q] && drops(order[r], order[q], iou(boxes, order[r], boxes, order[q]))) keep[q] = 0;
    }
  }
  return order.filter((_, r) => keep[r]);
}

/** Greedy NMS: kept indices by descending score; a box goes when IoU with a kept better box > threshold. */
export function nms(boxes, scores, iouThreshold) {
  const t = f(iouThreshold);
  return greedy(boxes, scores, (i, j, v) => v > t);
}

/** NMS within each label: boxes of different labels never suppress each other. Indices by descending score. */
export function batchedNms(boxes, scores, labels, iouThreshold) {
  const t = f(iouThreshold);
  return greedy(boxes, scores, (i, j, v) => v > t && labels[i] === labels[j]);
}

/** Face/mask suppression: drops a box overlapped (IoU > threshold) by a better box of another label. */
export function crossClassSuppress(boxes, scores, labels, iouThreshold) {
  const t = f(iouThreshold);
  return greedy(boxes, scores, (i, j, v) => v > t && labels[i] !== labels[j]);
}
