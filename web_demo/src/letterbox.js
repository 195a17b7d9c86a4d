// The geometry of slfm.core.letterbox: scale the long side to `size`, keep the aspect, pad right and bottom
// with the mean colour. The browser's canvas resamples the pixels; this fixes where they go.
import { f, roundHalfEven } from './f32.js';

export function letterbox(height, width, size) {
  if (!(height > 0 && width > 0)) throw new Error(`image size ${width}x${height} is empty`);
  const scale = size / Math.max(height, width);
  return {
    size,
    scale,
    resizedWidth: Math.min(size, roundHalfEven(width * scale)),
    resizedHeight: Math.min(size, roundHalfEven(height * scale)),
  };
}

/** A box (x1, y1, x2, y2) normalised to the input -> image pixels, clipped (slfm.predictor.to_image_pixels). */
export function toImagePixels(box, lb, imageHeight, imageWidth) {
  const s = f(lb.size);
  const k = f(lb.scale);
  const clip = (v, hi) => Math.min(Math.max(v, 0), hi);
  const px = (v) => f(f(v * s) / k);
  return [
    clip(px(box[0]), imageWidth),
    clip(px(box[1]), imageHeight),
    clip(px(box[2]), imageWidth),
    clip(px(box[3]), imageHeight),
  ];
}
