// What the browser offers for WebGPU, as LiteRT.js needs it (an adapter, and JSPI to compile for it). No imports:
// the parity harness probes a browser with this module alone.

/** True where the browser has JavaScript Promise Integration (LiteRT.js needs it to compile for WebGPU). */
export const hasJspi = () => typeof WebAssembly !== 'undefined' && 'Suspending' in WebAssembly;

/** {available, adapter} or {available: false, reason}. */
export async function webGpuStatus() {
  if (!globalThis.navigator?.gpu) return { available: false, reason: 'navigator.gpu is undefined (no WebGPU here)' };
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) return { available: false, reason: 'navigator.gpu.requestAdapter() returned null' };
  if (!hasJspi()) return { available: false, reason: 'no JSPI in this browser (LiteRT.js needs it to compile for WebGPU)' };
  const info = adapter.info ?? {};
  return { available: true, adapter: [info.vendor, info.architecture, info.description].filter(Boolean).join(' ') };
}
