// Which graph output is loc and which is scores: the one rule of slfm.core.output_order (Kotlin OutputOrder,
// Swift OutputOrder). The sidecar's output_indices (positions of loc and scores) when recorded, checked against
// the shapes; without it (older sidecars) loc is the one output ending in 4 and scores the one ending in the
// class count; an ambiguous pair (4 classes) is an error, never a guess.

/** [loc position, scores position] from each output's last dimension; throws naming the shapes. */
export function outputOrder(lastDims, numClasses, indices = null) {
  if (lastDims.length !== 2) throw new Error(`the model has ${lastDims.length} outputs; expected 2 (loc, scores)`);
  if (indices) {
    if ([...indices].sort().join() !== '0,1') throw new Error(`output_indices ${JSON.stringify(indices)} is not a permutation of [0, 1]`);
    const [loc, scores] = indices;
    if (lastDims[loc] !== 4 || lastDims[scores] !== numClasses) {
      throw new Error(
        `output_indices say loc is output ${loc} and scores output ${scores}, but their last dims are ` +
          `${JSON.stringify(lastDims)} (${numClasses} classes): the sidecar does not belong to this model`,
      );
    }
    return [loc, scores];
  }
  const locs = lastDims.flatMap((d, i) => (d === 4 ? [i] : []));
  const scores = lastDims.flatMap((d, i) => (d === numClasses ? [i] : []));
  if (locs.length !== 1 || scores.length !== 1 || locs[0] === scores[0]) {
    throw new Error(`cannot tell loc from scores by shape (last dims ${JSON.stringify(lastDims)}, ${numClasses} classes)`);
  }
  return [locs[0], scores[0]];
}

/** outputOrder with the class count and recorded indices of a parsed sidecar (meta.js). */
export function metaOutputOrder(meta, lastDims) {
  const rec = meta.outputIndices;
  const indices = rec ? ['loc', 'scores'].map((name) => rec[meta.outputs.indexOf(name)]) : null;
  return outputOrder(lastDims, meta.classes.length, indices);
}
