"""Shared fixtures: the real data and weights in ../shared (tests that need them skip where absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DATA = SHARED / "data"
MOXA = DATA / "moxa3k"
AIZOO_SAMPLE = DATA / "aizoo" / "val-sample"
WEIGHTS = SHARED / "weights"
BACKBONE = WEIGHTS / "mobilenetV1X0.25_pretrain.tar"
RETINAFACE = WEIGHTS / "retinaface_mobilenet0.25_Final.pth"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"needs {path} (the shared data/weights folder beside the repo; present in CI)")
    return path


@pytest.fixture(scope="session")
def moxa() -> Path:
    return need(MOXA)


@pytest.fixture(scope="session")
def aizoo_sample() -> Path:
    return need(AIZOO_SAMPLE)


@pytest.fixture(scope="session")
def retinaface_weights() -> Path:
    return need(RETINAFACE)


@pytest.fixture(scope="session")
def backbone_weights() -> Path:
    return need(BACKBONE)


@pytest.fixture(scope="session")
def easy_moxa_samples(moxa):
    """Eight real Moxa3K training images whose faces are all at least 16 px at a 320 letterbox."""
    from slfm.voc import load_dataset

    out = []
    for s in load_dataset(moxa, "moxa3k", "train", limit=200):
        side = (s.boxes[:, 2:] - s.boxes[:, :2]).min() * 320 / max(s.width, s.height)
        if side >= 16 and len(s.boxes) <= 6:
            out.append(s)
        if len(out) == 8:
            return out
    pytest.skip("fewer than 8 easy Moxa3K images found")


@pytest.fixture(scope="session")
def retinaface_model(retinaface_weights):
    """SL-FMDet at 320 initialised from the real RetinaFace checkpoint: real weights, realistic outputs."""
    import torch

    from slfm.config import ModelConfig
    from slfm.model import SLFMDet
    from slfm.weights import load_retinaface

    torch.manual_seed(0)
    model = SLFMDet(ModelConfig(image_size=320))
    load_retinaface(model, retinaface_weights)
    return model.eval()


# Fixtures that need ../shared: a test using one (directly or through another fixture) gets the `data` marker,
# so `-m "not data"` selects what runs on a bare clone.
DATA_FIXTURES = frozenset({"moxa", "aizoo_sample", "retinaface_weights", "backbone_weights"})


def pytest_collection_modifyitems(config, items):
    for item in items:
        if DATA_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.data)


def random_boxes(rng: np.random.Generator, n: int, size: float = 100.0) -> np.ndarray:
    xy = rng.uniform(0, size, (n, 2))
    wh = rng.uniform(size / 100, size / 3, (n, 2))
    return np.concatenate([xy, xy + wh], 1).astype(np.float32)


# Converter / quantization fixtures (session-scoped artifacts shared by test_convert_* and test_quantize*).
from _fixtures_convert import (  # noqa: E402, F401
    artifacts,
    moxa_samples,
    ptq_checkpoint,
    ptq_graph,
    ptq_pair,
    ptq_source,
    real_checkpoint,
    real_inputs,
)
