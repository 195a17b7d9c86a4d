// One frame, as the demo runs it: letterbox on a canvas (the browser resamples), encode, the model, the port of
// slfm's post-processing, boxes back to the frame's pixels. Browser only (OffscreenCanvas).
import { letterbox, toImagePixels } from './letterbox.js';
import { metaAnchors } from './meta.js';
import { postprocess } from './postprocess.js';
import { encodeInput } from './preprocess.js';

export class Pipeline {
  constructor(detector, meta) {
    this.detector = detector;
    this.meta = meta;
    this.priors = metaAnchors(meta);
    const s = meta.imageSize;
    this.ctx = new OffscreenCanvas(s, s).getContext('2d', { willReadFrequently: true });
    const [b, g, r] = Array.from(meta.meanBgr, Math.round);
    this.padColor = `rgb(${r}, ${g}, ${b})`;
    this.input = null; // the encoded frame, reused
  }

  /** Detections of one frame (`source` width x height) in its pixels: {modelMs, detections: [{box, score, label}]}. */
  async detect(source, width, height) {
    const { meta, ctx } = this;
    const s = meta.imageSize;
    const lb = letterbox(height, width, s);
    ctx.fillStyle = this.padColor;
    ctx.fillRect(0, 0, s, s);
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(source, 0, 0, width, height, 0, 0, lb.resizedWidth, lb.resizedHeight);
    const x = (this.input = encodeInput(ctx.getImageData(0, 0, s, s).data, meta, this.input));
    const t0 = performance.now();
    const { loc, scores } = await this.detector.run(x);
    const modelMs = performance.now() - t0;
    const dets = postprocess(loc, scores, this.detector.numClasses, this.priors, meta.variances, meta.postprocess);
    return { modelMs, detections: dets.map((d) => ({ ...d, box: toImagePixels(d.box, lb, height, width) })) };
  }
}
