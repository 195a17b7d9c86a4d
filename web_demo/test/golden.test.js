// The JavaScript port against the Python definitions, through the golden vectors (as the Kotlin and Swift ports).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { anchors } from '../src/anchors.js';
import { decode } from '../src/codec.js';
import { letterbox, toImagePixels } from '../src/letterbox.js';
import { metaAnchors, parseMeta } from '../src/meta.js';
import { batchedNms, crossClassSuppress, iou, nms } from '../src/nms.js';
import { metaOutputOrder, outputOrder } from '../src/outputs.js';
import { DEMO, postprocess } from '../src/postprocess.js';
import { encodeInput } from '../src/preprocess.js';
import { dequantizeArray, quantize } from '../src/quant.js';
import { load, postprocessFiles, rows, text } from './golden.js';

function assertClose(want, got, tol, what) {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    const t = tol * Math.max(1, Math.abs(want[i]));
    assert.ok(Math.abs(want[i] - got[i]) <= t, `${what}[${i}]: want ${want[i]}, got ${got[i]}`);
  }
}

test('anchors', () => {
  for (const c of load('anchors.json').cases) {
    const a = anchors(c.height, c.width);
    assert.equal(a.length / 4, c.count, 'anchor count');
    const want = rows(c.rows);
    c.indices.forEach((i, k) => {
      assert.deepEqual(a.subarray(4 * i, 4 * i + 4), want.subarray(4 * k, 4 * k + 4), `anchor ${i}`);
    });
  }
});

test('letterbox', () => {
  for (const c of load('letterbox.json').cases) {
    const lb = letterbox(c.height, c.width, c.size);
    assert.equal(lb.scale, c.scale, `scale of ${JSON.stringify(c)}`);
    assert.equal(lb.resizedWidth, c.resized_width, `resized width of ${JSON.stringify(c)}`);
    assert.equal(lb.resizedHeight, c.resized_height, `resized height of ${JSON.stringify(c)}`);
  }
});

test('decode', () => {
  for (const c of load('decode.json').cases) {
    const boxes = decode(rows(c.loc), rows(c.priors), Float32Array.from(c.variances));
    assertClose(rows(c.boxes), boxes, 1e-6, `decode ${c.image}`);
  }
});

test('nms', () => {
  for (const c of load('nms.json').cases) {
    const boxes = rows(c.boxes);
    const scores = Float32Array.from(c.scores);
    const labels = Int32Array.from(c.labels);
    const thr = c.iou_threshold;
    const want = c.expected;
    const what = `${c.image} @ ${thr}`;
    assert.deepEqual(Array.from(nms(boxes, scores, thr)), want.nms, `nms ${what}`);
    assert.deepEqual(Array.from(batchedNms(boxes, scores, labels, thr)), want.batched_nms, `batched ${what}`);
    assert.deepEqual(Array.from(crossClassSuppress(boxes, scores, labels, thr)), want.cross_class, `cross ${what}`);
    const n = scores.length;
    const ious = Float32Array.from({ length: 3 * n }, (_, k) => iou(boxes, Math.floor(k / n), boxes, k % n));
    assertClose(rows(want.iou_first_rows), ious, 1e-6, `iou ${what}`);
  }
});

test('quant', () => {
  for (const c of load('quant.json').cases) {
    const got = c.values.map((v) => quantize(Math.fround(v), c.scale, c.zero_point));
    assert.deepEqual(got, c.expected.quantized, `quantize ${c.name}`);
    const deq = dequantizeArray(Int8Array.from(c.q), c.scale, c.zero_point);
    assert.deepEqual(deq, Float32Array.from(c.expected.dequantized), `dequantize ${c.name}`);
  }
});

test('sidecar', () => {
  const m = parseMeta(text('sidecar_int8.tflite.json'));
  assert.equal(m.format, 'tflite');
  assert.equal(m.layout, 'NHWC');
  assert.deepEqual(m.inputQuant, { scale: 1.0, zeroPoint: -11 });
  assert.deepEqual(m.outputQuant.scores, { scale: 0.00390625, zeroPoint: -128 });
  assert.equal(metaAnchors(m).length / 4, m.numAnchors);
  assert.deepEqual(m.classes, ['background', 'face', 'mask']);
  assert.deepEqual(m.postprocess, DEMO);
  assert.deepEqual(m.outputIndices, [1, 0]);
  assert.deepEqual(metaOutputOrder(m, [3, 4]), [1, 0]);
});

// Pixels -> model input under sidecars with pixel_scale != 1, int8 ties and both layouts.
test('encode', () => {
  for (const c of load('encode.json').cases) {
    const meta = parseMeta(c.sidecar);
    const rgba = new Uint8Array((c.pixels.length / 3) * 4);
    for (let p = 0; p < c.pixels.length / 3; p++) {
      rgba.set([c.pixels[3 * p + 2], c.pixels[3 * p + 1], c.pixels[3 * p], 255], 4 * p);
    }
    const got = encodeInput(rgba, meta);
    const want = meta.inputDtype === 'int8' ? Int8Array.from(c.expected) : Float32Array.from(c.expected);
    assert.deepEqual(got, want, `encode ${c.name}`);
  }
});

test('outputs', () => {
  for (const c of load('outputs.json').cases) {
    let got = null;
    try {
      got = outputOrder(c.last_dims, c.num_classes, c.indices);
    } catch {
      got = null;
    }
    assert.deepEqual(got, c.expected, `output order ${JSON.stringify(c)}`);
  }
});

for (const name of postprocessFiles()) {
  test(`postprocess ${name.replace(/\.json$/, '')}`, () => {
    const c = load(name);
    const size = c.input_size;
    const all = anchors(size, size, c.min_sizes, c.steps);
    const idx = c.anchor_indices;
    const priors = Float32Array.from({ length: 4 * idx.length }, (_, k) => all[4 * idx[k >> 2] + (k & 3)]);
    const loc = rows(c.loc);
    const scores = rows(c.scores);
    const lb = letterbox(c.image_height, c.image_width, size);
    assert.equal(lb.scale, c.scale, 'letterbox scale');
    for (const [key, k] of Object.entries(c.configs)) {
      const cfg = {
        scoreThreshold: k.score_threshold,
        nmsIou: k.nms_iou,
        crossClassIou: k.cross_class_iou,
        preNmsTopK: k.pre_nms_top_k,
        maxDetections: k.max_detections,
      };
      const dets = postprocess(loc, scores, 3, priors, Float32Array.from(c.variances), cfg);
      const want = c.expected[key];
      const what = `${name}/${key}`;
      assert.deepEqual(dets.map((d) => d.label), want.labels, `${what} labels`);
      assert.deepEqual(Float32Array.from(dets, (d) => d.score), Float32Array.from(want.scores), `${what} scores`);
      assertClose(rows(want.boxes), Float32Array.from(dets.flatMap((d) => d.box)), 1e-5, `${what} boxes`);
      const px = dets.flatMap((d) => toImagePixels(d.box, lb, c.image_height, c.image_width));
      assertClose(rows(want.pixel_boxes), Float32Array.from(px), 1e-5, `${what} pixels`);
    }
  });
}
