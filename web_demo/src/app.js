// The demo page: camera (getUserMedia), or an image or video file -> letterbox on a canvas -> LiteRT.js ->
// the port of slfm's post-processing -> boxes, labels ("mask" / "no mask") and FPS drawn over the frame.
// Everything it loads is in its own folder (built by `slfm deploy web`): once loaded it needs no network.
// State for tests and curious users: window.slfmDemo (detections of the last frame in its pixels, FPS, ...).
import { parseMeta } from './meta.js';
import { Pipeline } from './pipeline.js';
import { Detector } from './runtime.js';

const WASM_DIR = new URL('../vendor/litertjs/wasm/', import.meta.url).href;
const STYLE = { 1: { name: 'no mask', color: '#e63946' }, 2: { name: 'mask', color: '#2a9d8f' } };
const FPS_WINDOW = 30; // frames

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const state = (window.slfmDemo = { state: 'loading', error: null, frames: 0, fps: null, modelMs: null, detections: [] });

function draw(view, source, width, height, detections) {
  view.width = width;
  view.height = height;
  const ctx = view.getContext('2d');
  ctx.drawImage(source, 0, 0, width, height);
  const line = Math.max(2, Math.round(Math.max(width, height) / 300));
  ctx.lineWidth = line;
  ctx.font = `${Math.max(12, 6 * line)}px system-ui, sans-serif`;
  for (const d of detections) {
    const [x1, y1, x2, y2] = d.box;
    const st = STYLE[d.label] ?? { name: `class ${d.label}`, color: '#ffb703' };
    ctx.strokeStyle = ctx.fillStyle = st.color;
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    const text = `${st.name} ${d.score.toFixed(2)}`;
    const th = 6 * line + 4;
    const tw = ctx.measureText(text).width + 8;
    const tx = Math.max(0, Math.min(x1 - line / 2, width - tw)); // the label stays inside the frame
    ctx.fillRect(tx, Math.max(0, y1 - th), tw, th);
    ctx.fillStyle = '#fff';
    ctx.fillText(text, tx + 4, Math.max(th, y1) - 4);
  }
}

function status(text) {
  $('status').textContent = text;
}

async function loadModels() {
  const models = await (await fetch('models.json')).json();
  if (!models.length) throw new Error('models.json lists no model: build the page with `slfm deploy web ARTIFACT`');
  const select = $('model');
  for (const m of models) select.add(new Option(m.label, m.file));
  const wanted = params.get('model');
  if (wanted) select.value = models.find((m) => m.file.endsWith(wanted))?.file ?? select.value;
  return models;
}

async function loadDetector(file, accelerator) {
  const [metaText, bytes] = await Promise.all([
    fetch(`${file}.json`).then((r) => r.text()),
    fetch(file).then((r) => r.arrayBuffer()),
  ]);
  const meta = parseMeta(metaText);
  return new Pipeline(await Detector.create(WASM_DIR, new Uint8Array(bytes), meta, accelerator), meta);
}

async function main() {
  const accelerator = params.get('accelerator') ?? 'wasm';
  $('accelerator').value = accelerator;
  $('accelerator').onchange = (e) => {
    params.set('accelerator', e.target.value);
    location.search = params.toString(); // the runtime build (JSPI for WebGPU) is chosen at load
  };
  await loadModels();
  let pipeline = await loadDetector($('model').value, accelerator);
  let run = 0; // generation of the current loop: a new source or model stops the old loop
  let facing = 'environment';
  Object.assign(state, { state: 'ready', model: $('model').value, accelerator });
  status(`ready: ${$('model').selectedOptions[0].text} on ${accelerator}; choose the camera or a file`);

  async function loop(source, size, label) {
    const me = ++run;
    const times = [];
    state.frames = 0;
    while (me === run) {
      const [w, h] = size();
      if (w && h) {
        const t0 = performance.now();
        const { modelMs, detections } = await pipeline.detect(source, w, h);
        if (me !== run) break;
        draw($('view'), source, w, h, detections);
        times.push(performance.now() - t0);
        if (times.length > FPS_WINDOW) times.shift();
        const fps = 1000 / (times.reduce((a, b) => a + b, 0) / times.length);
        Object.assign(state, { state: 'running', frames: state.frames + 1, fps, modelMs, detections, frameSize: [w, h], source: label });
        status(`${label} · ${fps.toFixed(1)} FPS · model ${modelMs.toFixed(1)} ms · ${detections.length} detections`);
      }
      await new Promise((r) => requestAnimationFrame(r));
    }
  }

  async function camera() {
    const video = $('video');
    video.srcObject?.getTracks().forEach((t) => t.stop());
    video.srcObject = await navigator.mediaDevices.getUserMedia({ video: { facingMode: facing }, audio: false });
    await video.play();
    loop(video, () => [video.videoWidth, video.videoHeight], 'camera');
  }

  async function file(f) {
    run++;
    const video = $('video');
    video.srcObject?.getTracks().forEach((t) => t.stop());
    video.srcObject = null;
    if (f.type.startsWith('video/')) {
      video.src = URL.createObjectURL(f);
      video.loop = true;
      await video.play();
      loop(video, () => [video.videoWidth, video.videoHeight], f.name);
      return;
    }
    const bitmap = await createImageBitmap(f);
    const { modelMs, detections } = await pipeline.detect(bitmap, bitmap.width, bitmap.height);
    draw($('view'), bitmap, bitmap.width, bitmap.height, detections);
    Object.assign(state, { state: 'image', frames: 1, modelMs, detections, frameSize: [bitmap.width, bitmap.height], source: f.name });
    status(`${f.name} · model ${modelMs.toFixed(1)} ms · ${detections.length} detections`);
  }

  const guard = (fn) => (...a) => fn(...a).catch(fail);
  $('camera').onclick = guard(camera);
  $('flip').onclick = guard(async () => {
    facing = facing === 'environment' ? 'user' : 'environment';
    await camera();
  });
  $('file').onchange = guard(async (e) => e.target.files[0] && file(e.target.files[0]));
  $('model').onchange = guard(async (e) => {
    const old = pipeline;
    pipeline = await loadDetector(e.target.value, accelerator);
    setTimeout(() => old.detector.delete(), 2000); // after the frame it may be running
    state.model = e.target.value;
  });
  if (params.get('camera') === '1') await camera();
}

function fail(e) {
  Object.assign(state, { state: 'error', error: String(e?.message ?? e) });
  status(`error: ${state.error}`);
  console.error(e);
}

if ('serviceWorker' in navigator && params.get('offline') !== '0') {
  navigator.serviceWorker.register('sw.js').catch(() => {}); // offline reloads; the page works without it
}
main().catch(fail);
