"""SSD box decoding (variances 0.1 / 0.2): the one inference-side definition. NumPy only.

The training-side inverse, :func:`slfm.match.encode`, is tested against this ``decode``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def decode(loc: np.ndarray, priors: np.ndarray, variances: Sequence[float] = (0.1, 0.2)) -> np.ndarray:
    """Offsets [..., A, 4] + anchors [A, 4] (cx, cy, w, h) -> boxes [..., A, 4] (x1, y1, x2, y2), normalised."""
    loc = np.asarray(loc, dtype=np.float32)
    cxcy = priors[:, :2] + loc[..., :2] * variances[0] * priors[:, 2:]
    wh = priors[:, 2:] * np.exp(loc[..., 2:] * variances[1])
    return np.concatenate([cxcy - wh / 2, cxcy + wh / 2], axis=-1)
