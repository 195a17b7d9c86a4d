// Hand-made cases the golden vectors do not pin down: ties, empties, bad input, the input encoder.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { anchors } from '../src/anchors.js';
import { roundHalfEven } from '../src/f32.js';
import { parseMeta } from '../src/meta.js';
import { argsortDescending, batchedNms, crossClassSuppress, nms } from '../src/nms.js';
import { postprocess } from '../src/postprocess.js';
import { encodeFloat, encodeInput, quantizeInput, toLayout } from '../src/preprocess.js';
import { quantize } from '../src/quant.js';

const sampleMeta = (layout, quant = null, dtype = 'int8') => ({
  schema: 'slfm-artifact/1', format: 'tflite', precision: 'int8', image_size: 32, layout, input_dtype: dtype,
  input_quant: quant, output_quant: {}, color: 'BGR', mean_bgr: [104.0, 117.0, 123.0], pixel_scale: 1.0,
  outputs: ['loc', 'scores'], classes: ['background', 'face', 'mask'], min_sizes: [[16, 32], [64, 128], [256, 512]],
  steps: [8, 16, 32], variances: [0.1, 0.2], num_anchors: 0, score_threshold: 0.5, nms_iou: 0.3, cross_class_iou: 0.5,
});

test('argsort ties keep lower index first', () => {
  assert.deepEqual(Array.from(argsortDescending(Float32Array.of(0.5, 0.9, 0.5, 0.9))), [1, 3, 0, 2]);
});

test('nms equal scores: lower index wins', () => {
  const boxes = Float32Array.of(0, 0, 1, 1, 0, 0, 1, 1);
  assert.deepEqual(Array.from(nms(boxes, Float32Array.of(0.7, 0.7), 0.3)), [0]);
});

test('batched nms keeps overlapping boxes of different labels', () => {
  const boxes = Float32Array.of(0, 0, 1, 1, 0, 0, 1, 1);
  const scores = Float32Array.of(0.6, 0.8);
  assert.deepEqual(Array.from(batchedNms(boxes, scores, Int32Array.of(1, 2), 0.3)), [1, 0]);
  assert.deepEqual(Array.from(crossClassSuppress(boxes, scores, Int32Array.of(1, 2), 0.5)), [1]);
});

test('empty inputs', () => {
  assert.equal(batchedNms(new Float32Array(0), new Float32Array(0), new Int32Array(0), 0.3).length, 0);
  const pri = anchors(32, 32);
  const a = pri.length / 4;
  assert.deepEqual(postprocess(new Float32Array(4 * a), new Float32Array(3 * a), 3, pri), []);
});

test('postprocess rejects a size mismatch', () => {
  assert.throws(() => postprocess(new Float32Array(8), new Float32Array(6), 3, anchors(32, 32)), /anchors/);
});

test('anchors at 640: 16800', () => assert.equal(anchors(640, 640).length, 16800 * 4));

test('round half to even, like Python', () => {
  assert.deepEqual([0.5, 1.5, 2.5, -0.5, -1.5, 2.4, 2.6].map(roundHalfEven), [0, 2, 2, -0, -2, 2, 3]);
});

test('quantize rounds halves away from zero and clamps', () => {
  assert.deepEqual([0.5, 1.5, 2.5, -0.5, -2.5, 1000, -1000].map((v) => quantize(v, 1, 0)), [1, 2, 3, -1, -3, 127, -128]);
});

test('metadata with another schema, layout or colour is refused', () => {
  assert.throws(() => parseMeta('{"schema": "other/9"}'), /slfm-artifact\/1/);
  assert.throws(() => parseMeta({ ...sampleMeta('NCHW'), layout: 'CHW' }), /layout/);
  assert.throws(() => parseMeta({ ...sampleMeta('NCHW'), color: 'RGB' }), /BGR/);
  assert.throws(() => parseMeta(sampleMeta('NCHW', null, 'int8')), /input_quant/);
});

test('input encoder: BGR minus mean, NCHW float and NHWC int8', () => {
  const n = 32 * 32;
  const rgba = new Uint8ClampedArray(4 * n);
  for (let p = 0; p < n; p++) rgba.set([200, 100, 50, 255], 4 * p);
  const x = encodeInput(rgba, parseMeta(sampleMeta('NCHW', null, 'float32')));
  assert.ok(x instanceof Float32Array);
  assert.deepEqual([x[0], x[n], x[2 * n]], [50 - 104, 100 - 117, 200 - 123]);
  const q = encodeInput(rgba, parseMeta(sampleMeta('NHWC', [0.5, 3])));
  assert.ok(q instanceof Int8Array);
  assert.deepEqual(Array.from(q.subarray(0, 3)), [-105, -31, 127]);
  const nhwc = toLayout(Float32Array.from({ length: 3 * n }, (_, i) => i), parseMeta(sampleMeta('NHWC', [1, 0])));
  assert.deepEqual(Array.from(nhwc.subarray(0, 4)), [0, n, 2 * n, 1]);
});

test('int8 encoder tables give quantize(encodeFloat(...)) for every byte', () => {
  const n = 32 * 32;
  const rgba = Uint8ClampedArray.from({ length: 4 * n }, (_, i) => (i * 7) % 256);
  for (const layout of ['NCHW', 'NHWC']) {
    const meta = parseMeta(sampleMeta(layout, [1.0710357427597046, -13]));
    const direct = quantizeInput(encodeFloat(rgba, meta), meta);
    assert.deepEqual(encodeInput(rgba, meta), direct, layout);
  }
});
