// float32 arithmetic helpers: every port computes in float32 with NumPy's operation order, so that keep/drop
// decisions and rounding match slfm's Python definitions. JavaScript numbers are doubles; `f` rounds to float32.
export const f = Math.fround;

/** Python's round(): halves to even. */
export function roundHalfEven(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
