// The artifact contract (slfm/artifact.py, schema slfm-artifact/1), read from the <model>.json sidecar shipped
// beside the model: input size, layout and quantization, normalisation, anchors and thresholds.
import { anchors } from './anchors.js';
import { DEMO } from './postprocess.js';

export const SCHEMA = 'slfm-artifact/1';

function quant(v) {
  return Array.isArray(v) ? { scale: Number(v[0]), zeroPoint: Math.trunc(Number(v[1])) } : null;
}

/** Parses a sidecar (JSON text or an already parsed object); throws with one line naming what is wrong. */
export function parseMeta(text) {
  const d = typeof text === 'string' ? JSON.parse(text) : text;
  if (d === null || typeof d !== 'object' || Array.isArray(d)) throw new Error('metadata is not a JSON object');
  if (d.schema !== SCHEMA) throw new Error(`artifact metadata schema '${d.schema}' is not '${SCHEMA}'`);
  if (d.layout !== 'NCHW' && d.layout !== 'NHWC') throw new Error(`unknown input layout '${d.layout}'`);
  if (d.color !== 'BGR') throw new Error(`only BGR models are supported, got '${d.color}'`);
  const outputQuant = {};
  for (const [k, v] of Object.entries(d.output_quant ?? {})) {
    outputQuant[k] = quant(v);
    if (!outputQuant[k]) throw new Error(`bad output_quant '${k}'`);
  }
  const meta = {
    format: d.format,
    precision: d.precision,
    imageSize: d.image_size,
    layout: d.layout,
    inputDtype: d.input_dtype,
    inputQuant: quant(d.input_quant),
    outputQuant,
    meanBgr: Float32Array.from(d.mean_bgr),
    pixelScale: d.pixel_scale,
    outputs: [...d.outputs],
    outputIndices: Array.isArray(d.output_indices) ? [...d.output_indices] : null, // null: older sidecars
    classes: [...d.classes],
    minSizes: d.min_sizes.map((m) => [...m]),
    steps: [...d.steps],
    variances: Float32Array.from(d.variances),
    numAnchors: d.num_anchors,
    postprocess: {
      ...DEMO,
      scoreThreshold: d.score_threshold,
      nmsIou: d.nms_iou,
      crossClassIou: d.cross_class_iou,
    },
  };
  if (meta.inputDtype === 'int8' && !meta.inputQuant) throw new Error('int8 input without input_quant');
  return meta;
}

/** The anchors for the model's input size, checked against the metadata's count. */
export function metaAnchors(meta) {
  const a = anchors(meta.imageSize, meta.imageSize, meta.minSizes, meta.steps);
  if (meta.numAnchors && a.length / 4 !== meta.numAnchors) {
    throw new Error(`metadata says ${meta.numAnchors} anchors but ${a.length / 4} were generated for ${meta.imageSize}`);
  }
  return a;
}
