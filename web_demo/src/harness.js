// The parity harness's page (`slfm parity ARTIFACT --target browser`): runs the artifact through the same
// runtime.js as the demo on the harness's prepared inputs (float32 NCHW, fetched from /parity/), sends the raw
// outputs back, then times the model call and the demo's whole frame (letterbox on a canvas, encode, model,
// post-processing) on the first image. Result in window.slfmHarness (a promise), read by the harness.
import { parseMeta } from './meta.js';
import { Pipeline } from './pipeline.js';
import { quantizeInput, toLayout } from './preprocess.js';
import { Detector, liteRt } from './runtime.js';
import { webGpuStatus } from './webgpu.js';

const WASM_DIR = new URL('../vendor/litertjs/wasm/', import.meta.url).href;
const q = new URLSearchParams(location.search);
const num = (k, d) => Number(q.get(k) ?? d);

async function timed(fn, runs, warmup) {
  const warm = [];
  const times = [];
  for (let i = 0; i < warmup + runs; i++) {
    const t0 = performance.now();
    await fn();
    (i < warmup ? warm : times).push(performance.now() - t0);
  }
  return { warm, times };
}

async function main() {
  const model = q.get('model');
  const accelerator = q.get('accelerator') ?? 'wasm';
  const count = num('count', 0);
  const runs = num('runs', 20);
  const warmup = num('warmup', 3);
  const meta = parseMeta(await (await fetch(`${model}.json`)).text());
  const bytes = new Uint8Array(await (await fetch(model)).arrayBuffer());
  const t0 = performance.now();
  const detector = await Detector.create(WASM_DIR, bytes, meta, accelerator);
  const loadMs = performance.now() - t0;
  const toInput = (nchw) => {
    const x = toLayout(nchw, meta);
    return meta.inputDtype === 'int8' ? quantizeInput(x, meta) : x;
  };
  let first = null;
  for (let i = 0; i < count; i++) {
    const nchw = new Float32Array(await (await fetch(`/parity/inputs/${i}`)).arrayBuffer());
    const x = toInput(nchw);
    first ??= x;
    const { loc, scores } = await detector.run(x);
    const body = new Uint8Array(loc.byteLength + scores.byteLength);
    body.set(new Uint8Array(loc.buffer, loc.byteOffset, loc.byteLength));
    body.set(new Uint8Array(scores.buffer, scores.byteOffset, scores.byteLength), loc.byteLength);
    const r = await fetch(`/parity/outputs/${i}`, { method: 'POST', body });
    if (!r.ok) throw new Error(`POST /parity/outputs/${i}: ${r.status}`);
    document.getElementById('status').textContent = `${i + 1} / ${count}`;
  }
  // The model call as the other runtimes time it (input quantization and output dequantization included).
  const model_ = await timed(() => detector.run(first), runs, warmup);
  // The demo's whole frame on the first image: letterbox + encode + model + post-processing.
  const image = await createImageBitmap(await (await fetch('/parity/image/0')).blob());
  const pipeline = new Pipeline(detector, meta);
  const frame = await timed(() => pipeline.detect(image, image.width, image.height), runs, warmup);
  const rt = await liteRt(WASM_DIR);
  return {
    accelerator,
    load_ms: loadMs,
    warmup_ms: model_.warm,
    times_ms: model_.times,
    frame_ms: frame.times,
    image_size: [image.width, image.height],
    threads: accelerator === 'wasm' ? rt.liteRtWasm.getThreadCount() : null,
    wasm_heap_mb: rt.liteRtWasm.HEAPU8.byteLength / 2 ** 20,
    webgpu: await webGpuStatus(),
    user_agent: navigator.userAgent,
  };
}

window.slfmHarness = main().then(
  (r) => ({ ok: true, ...r }),
  (e) => ({ ok: false, error: String(e?.message ?? e), stack: String(e?.stack ?? '') }),
);
