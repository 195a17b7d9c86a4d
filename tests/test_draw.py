"""Annotated images: people read "no mask" / "mask"; labels stay inside the image and apart."""

import numpy as np

from slfm.draw import draw, place_labels, to_json
from slfm.metrics import ImageDetections


def _inside(r, width, height):
    return 0 <= r[0] < r[2] <= width and 0 <= r[1] < r[3] <= height


def _overlap(a, b):
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_labels_stay_inside_a_small_image_and_do_not_overlap():
    # a ~300 px image: a face at the top-left corner, one at the right edge, two side by side touching
    boxes = np.array([[0, 0, 40, 40], [270, 100, 300, 140], [100, 150, 140, 190], [120, 152, 160, 192]], np.float32)
    sizes = [(80, 16)] * 4
    rects = place_labels(boxes, sizes, 300, 300)
    assert all(_inside(r, 300, 300) for r in rects), rects
    assert not any(_overlap(a, b) for i, a in enumerate(rects) for b in rects[i + 1 :]), rects
    assert rects[2][3] == 150  # room above its box: the label sits just above it


def test_annotated_image_and_json_say_no_mask():
    det = ImageDetections(
        boxes=np.array([[10, 10, 60, 60], [100, 100, 150, 150]], np.float32),
        scores=np.array([0.9, 0.8], np.float32),
        labels=np.array([1, 2]),
    )
    rows = to_json(det)
    assert [(r["label"], r["display"]) for r in rows] == [("face", "no mask"), ("mask", "mask")]
    image = np.zeros((300, 300, 3), np.uint8)
    out = draw(image, det)
    assert out.shape == image.shape and out.any() and not image.any()


def test_detect_tells_people_no_mask_and_mask(moxa, tmp_path):
    import json
    import re

    from click.testing import CliRunner

    from slfm.checkpoint import BUNDLED
    from slfm.cli import main

    image = next((moxa / "images").iterdir())
    r = CliRunner().invoke(main, ["detect", "moxa3k", str(image), "--out", str(tmp_path), "--threads", "1"])
    assert r.exit_code == 0, r.output
    (entry,) = json.loads((tmp_path / "detections.json").read_text()).values()
    shown = [d["display"] for d in entry["detections"]]
    m = re.search(r"(\d+) detections \((\d+) no mask, (\d+) mask\)", r.output)
    assert m, r.output
    assert [int(g) for g in m.groups()] == [len(shown), shown.count("no mask"), shown.count("mask")]
    help_text = CliRunner().invoke(main, ["detect", "--help"]).output
    assert "no mask" in help_text and all(name in help_text for name in BUNDLED)
