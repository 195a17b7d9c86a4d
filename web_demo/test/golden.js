// Loads the golden vectors (tests/golden, made by slfm/golden.py); SLFM_GOLDEN_DIR overrides the folder.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const GOLDEN_DIR = process.env.SLFM_GOLDEN_DIR
  ? resolve(process.env.SLFM_GOLDEN_DIR)
  : resolve(dirname(fileURLToPath(import.meta.url)), '../../tests/golden');

export const text = (name) => readFileSync(join(GOLDEN_DIR, name), 'utf8');
export const load = (name) => JSON.parse(text(name));
export const postprocessFiles = () => readdirSync(GOLDEN_DIR).filter((n) => /^postprocess_.*\.json$/.test(n)).sort();

/** Rows of numbers -> one flat Float32Array. */
export const rows = (r) => Float32Array.from(r.flat());
