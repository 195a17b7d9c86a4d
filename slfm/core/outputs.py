"""Which graph output is ``loc`` and which is ``scores``: the one rule, mirrored by the Kotlin
(``org.slfm.core.OutputOrder``), Swift (``OutputOrder``) and JS (``outputOrder``) ports."""

from __future__ import annotations

from collections.abc import Sequence


def output_order(last_dims: Sequence[int], num_classes: int, indices: Sequence[int] | None = None) -> tuple[int, int]:
    """(position of ``loc``, position of ``scores``) among a graph's two outputs, given each output's last
    dimension.

    ``indices`` is the sidecar's ``output_indices`` (the positions of ``loc`` and ``scores``, parallel to its
    ``outputs`` names): used when recorded, after checking the shapes agree. Without it (sidecars written
    before it existed) the shapes decide: ``loc`` is the one output ending in 4, ``scores`` the one ending in
    the class count; an ambiguous pair (4 classes) is an error, never a guess.
    Raises ValueError naming the shapes."""
    dims = [int(d) for d in last_dims]
    if len(dims) != 2:
        raise ValueError(f"the model has {len(dims)} outputs; expected 2 (loc, scores)")
    if indices is not None:
        if sorted(int(i) for i in indices) != [0, 1]:
            raise ValueError(f"output_indices {list(indices)} is not a permutation of [0, 1]")
        loc, scores = int(indices[0]), int(indices[1])
        if dims[loc] != 4 or dims[scores] != num_classes:
            raise ValueError(
                f"output_indices say loc is output {loc} and scores output {scores}, but their last dims are "
                f"{dims} ({num_classes} classes): the sidecar does not belong to this model"
            )
        return loc, scores
    locs = [i for i, d in enumerate(dims) if d == 4]
    scores = [i for i, d in enumerate(dims) if d == num_classes]
    if len(locs) != 1 or len(scores) != 1 or locs == scores:
        raise ValueError(f"cannot tell loc from scores by shape (last dims {dims}, {num_classes} classes)")
    return locs[0], scores[0]


def meta_output_order(meta, last_dims: Sequence[int]) -> tuple[int, int]:
    """:func:`output_order` with the class count and recorded indices of an :class:`slfm.artifact.ArtifactMeta`."""
    recorded = getattr(meta, "output_indices", None)
    indices = None
    if recorded:
        by_name = dict(zip(meta.outputs, recorded, strict=True))
        indices = (by_name["loc"], by_name["scores"])
    return output_order(last_dims, len(meta.classes), indices)
