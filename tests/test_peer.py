"""AIZOO's released detector, decoded from its notes, on real images; and the side-by-side report."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from slfm.cli import main
from slfm.evaluate import evaluate_samples
from slfm.peer import PEER_PER_CLASS
from slfm.voc import load_dataset
from tests.conftest import SHARED, need

PEER = SHARED / "peers" / "aizoo" / "face_mask_detection.tflite"


def test_peer_anchor_layout():
    from slfm.peer import peer_anchors

    a = peer_anchors()
    assert a.shape == (5972, 4)
    # first cell of the 33x33 level: sizes 0.04 and 0.056 at ratio 1, then 0.04 at ratios 0.62 and 0.42
    np.testing.assert_allclose(a[0], [0.5 / 33, 0.5 / 33, 0.04, 0.04], rtol=1e-5)
    np.testing.assert_allclose(a[2, 2:], [0.04 * np.sqrt(0.62), 0.04 / np.sqrt(0.62)], rtol=1e-5)
    np.testing.assert_allclose(a[4, :2], [1.5 / 33, 0.5 / 33], rtol=1e-5)  # next cell: x moves first
    np.testing.assert_allclose(a[-1, :2], [2.5 / 3, 2.5 / 3], rtol=1e-5)


@pytest.mark.slow
def test_peer_detects_on_real_aizoo_images(aizoo_sample):
    pytest.importorskip("ai_edge_litert")
    from slfm.peer import PeerDetector

    samples = load_dataset(aizoo_sample.parent, "aizoo", "val-sample", limit=40)
    result = evaluate_samples(PeerDetector(need(PEER)), samples, progress=False)
    # AIZOO measured 0.88 mAP@0.5 on its own val split: a wrong decode would land near 0
    assert result["map50"] > 0.75, result["ap50"]


@pytest.mark.slow
def test_peer_per_class_decode_follows_the_map_protocol(aizoo_sample):
    pytest.importorskip("ai_edge_litert")
    from slfm.images import read_image
    from slfm.nms import iou
    from slfm.peer import PeerDetector
    from slfm.postprocess import EVAL

    samples = load_dataset(aizoo_sample.parent, "aizoo", "val-sample", limit=40)
    det = PeerDetector(need(PEER), post=EVAL)
    assert evaluate_samples(det, samples, progress=False)["map50"] > 0.75
    both = 0
    for s in samples[:10]:
        image = read_image(s.image, quiet=True)
        d = det(image)
        assert (d.scores > EVAL.score_threshold).all()
        h, w = image.shape[:2]
        inside = (d.boxes[:, :2] > 0).all(1) & (d.boxes[:, 2] < w) & (d.boxes[:, 3] < h)  # clipping moves IoU
        for label in (1, 2):
            b = d.boxes[(d.labels == label) & inside]
            ov = iou(b, b) - np.eye(len(b))
            assert (ov <= EVAL.nms_iou + 1e-6).all(), f"{s.image}: NMS within class {label} left overlaps"
        cross = iou(d.boxes[d.labels == 1], d.boxes[d.labels == 2])
        both += int((cross > 0.5).any())
    assert both > 0, "classes never overlap: the decode is not per class"


@pytest.mark.slow
def test_bench_peer_reports_both_detectors(aizoo_sample, tmp_path):
    pytest.importorskip("litert_torch")
    from slfm.checkpoint import bundled_checkpoint

    need(PEER)
    art = tmp_path / "art"
    r = CliRunner().invoke(
        main,
        ["convert", str(bundled_checkpoint("moxa3k")), "--to", "tflite", "--precision", "fp32", "--out", str(art)],
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    tflite = next(art.glob("*.tflite"))
    out = tmp_path / "peer"
    r = CliRunner().invoke(
        main,
        [
            "bench",
            "peer",
            str(tflite),
            "--peer",
            str(PEER),
            "--data",
            str(aizoo_sample.parent),
            "--dataset",
            "aizoo",
            "--split",
            "val-sample",
            "--limit",
            "8",
            "--runs",
            "5",
            "--out",
            str(out),
        ],
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    report = json.loads(out.with_suffix(".json").read_text())
    assert set(report["detectors"]) == {"slfm", "aizoo-peer", PEER_PER_CLASS} and report["images"] == 8
    for d in report["detectors"].values():
        assert 0 <= d["map50"] <= 1 and d["latency_ms"]["p50"] > 0
    assert "aizoo-peer" in out.with_suffix(".md").read_text()


def test_bench_peer_missing_peer_is_a_clear_error(tmp_path):
    r = CliRunner().invoke(
        main, ["bench", "peer", "x.tflite", "--peer", str(tmp_path / "nope.tflite"), "--data", str(tmp_path)]
    )
    assert r.exit_code == 1 and "peer model not found" in r.output and "nope.tflite" in r.output
