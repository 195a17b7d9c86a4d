"""slfm.core, the NumPy-only inference core: importable and working with torch and OpenCV blocked (as on a Pi
without them), one resize whichever backend it takes, and the one output-order rule."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

BLOCKED = r"""
import sys, importlib.abc

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "cv2", "torchvision", "PIL"):
            raise ImportError(f"blocked: {name}")
        return None

sys.meta_path.insert(0, Block())
"""

SCRIPT = (
    BLOCKED
    + r"""
import json
import numpy as np
from slfm.artifact import ArtifactMeta
from slfm.config import ModelConfig
from slfm.core import EVAL, decode, prepare, quantize
from slfm.core import image as core_image

assert core_image.cv2 is None
meta = ArtifactMeta.from_model_config(ModelConfig(image_size=64), "tflite", "fp32", pixel_scale=0.5)
rng = np.random.default_rng(0)
img = rng.integers(0, 256, (48, 80, 3), dtype=np.uint8)
x, frame = prepare(img, meta)
assert x.shape == (1, 3, 64, 64) and x.dtype == np.float32, x.shape
a = meta.num_anchors
loc = np.zeros((a, 4), np.float32)
scores = np.full((a, 3), [0.99, 0.005, 0.005], np.float32)
scores[7] = [0.01, 0.98, 0.01]
d = decode((loc, scores), meta, EVAL, frame)
mods = sorted(m.split(".")[0] for m in sys.modules if m.split(".")[0] in ("torch", "cv2"))
print(json.dumps({"x": x.ravel().tolist(), "boxes": d.boxes.tolist(), "labels": d.labels.tolist(),
                  "q": quantize(np.float32(2.5), 1.0, 0).tolist(), "mods": mods}))
"""
)


def test_core_runs_with_torch_and_cv2_blocked():
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["mods"] == [] and out["labels"] == [1] and out["q"] == 3
    from slfm.artifact import ArtifactMeta
    from slfm.config import ModelConfig
    from slfm.core import prepare

    img = np.random.default_rng(0).integers(0, 256, (48, 80, 3), dtype=np.uint8)
    meta = ArtifactMeta.from_model_config(ModelConfig(image_size=64), "tflite", "fp32", pixel_scale=0.5)
    x, _ = prepare(img, meta, use_cv2=False)  # the resize the Pi takes without OpenCV, here in this process
    np.testing.assert_array_equal(np.asarray(out["x"], np.float32), x.ravel())
    assert x[0, 0, -1, -1] == (np.float32(round(104.0)) - np.float32(104.0)) * 0.5  # padding: the mean colour
    b = np.asarray(out["boxes"][0])
    assert (b >= 0).all() and b[2] <= 80 and b[3] <= 48 and b[2] > b[0]


def test_bundle_ships_the_core_whole(tmp_path):
    from slfm.device_tests.bundle import build_bundle

    dest = build_bundle(tmp_path / "bundle")
    src = REPO / "slfm" / "core"
    assert sorted(p.name for p in (dest / "slfm" / "core").glob("*.py")) == sorted(p.name for p in src.glob("*.py"))
    # every module the runner imports resolves inside the bundle (pi_runner.detect reads sidecars: slfm.artifact),
    # not through this venv's editable install of the repository (its finder is dropped, as on a device)
    script = (
        BLOCKED
        + "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]\n"
        + "import pi_runner.parity, pi_runner.backend, pi_runner.detect, slfm.artifact, slfm.core\n"
        + "print(slfm.core.__file__)"
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=dest, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert Path(r.stdout.strip()).resolve().is_relative_to(dest.resolve())


@pytest.mark.parametrize("shape", [(480, 640), (1080, 1920), (100, 75), (333, 500)])
def test_numpy_resize_follows_opencv(shape):
    """The Pi's resize without OpenCV (slfm.core.image.resize_numpy) against OpenCV's, on a real photo."""
    import cv2
    from skimage import data

    from slfm.core import letterbox

    photo = np.ascontiguousarray(data.astronaut()[..., ::-1])
    img = cv2.resize(photo, shape[::-1], interpolation=cv2.INTER_AREA if shape[0] < 512 else cv2.INTER_LINEAR)
    for size in (320, 640):
        ours, s1 = letterbox(img, size, use_cv2=False)
        theirs, s2 = letterbox(img, size, use_cv2=True)
        diff = np.abs(ours.astype(int) - theirs.astype(int))
        assert s1 == s2 and diff.max() <= 2 and diff.mean() < 0.3, (shape, size, diff.max(), diff.mean())


def test_output_order_rule():
    from slfm.core import output_order

    assert output_order([4, 3], 3) == (0, 1) and output_order([3, 4], 3) == (1, 0)
    assert output_order([4, 4], 4, [1, 0]) == (1, 0)
    for dims, n, idx in (([4, 4], 4, None), ([4, 3], 3, [1, 0]), ([4, 3, 3], 3, None), ([4, 3], 3, [0, 0])):
        with pytest.raises(ValueError):
            output_order(dims, n, idx)


def test_sidecar_records_output_indices():
    from slfm.artifact import ArtifactMeta
    from slfm.config import ModelConfig
    from slfm.core import meta_output_order

    meta = ArtifactMeta.from_model_config(ModelConfig(image_size=64), "executorch", "fp32")
    assert meta.output_indices == [0, 1]
    d = json.loads(meta.to_json())
    assert ArtifactMeta.from_dict({**d, "output_indices": [1, 0]}).output_indices == [1, 0]
    old = {k: v for k, v in d.items() if k != "output_indices"}  # a sidecar older than the field
    assert meta_output_order(ArtifactMeta.from_dict(old), [3, 4]) == (1, 0)
    for bad in ([0, 0], [0], [0, 1, 2], ["0", "1"]):
        with pytest.raises(ValueError, match="output_indices"):
            ArtifactMeta.from_dict({**d, "output_indices": bad})
