import numpy as np
import pytest

from slfm.anchors import anchors
from slfm.codec import decode
from slfm.match import encode, match, point_form
from slfm.nms import batched_nms, cross_class_suppress, iou, nms
from tests.conftest import random_boxes


def brute_iou(a, b):
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def brute_nms(boxes, scores, thr):
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    keep = []
    for i in order:
        if all(brute_iou(boxes[i], boxes[k]) <= thr for k in keep):
            keep.append(i)
    return keep


def test_anchor_layout():
    a = anchors(320, 320)
    assert a.shape == (4200, 4)
    # first level, first cell: two sizes at the same centre, then the next cell to the right
    np.testing.assert_allclose(a[0], [4 / 320, 4 / 320, 16 / 320, 16 / 320])
    np.testing.assert_allclose(a[1], [4 / 320, 4 / 320, 32 / 320, 32 / 320])
    np.testing.assert_allclose(a[2, :2], [12 / 320, 4 / 320])
    np.testing.assert_allclose(a[-1], [(9 + 0.5) * 32 / 320, (9 + 0.5) * 32 / 320, 512 / 320, 512 / 320])
    # non-square inputs keep separate x and y normalisation
    b = anchors(320, 480)
    assert b.shape[0] == 2 * (40 * 60 + 20 * 30 + 10 * 15)


def test_decode_inverts_encode():
    rng = np.random.default_rng(0)
    priors = anchors(320, 320)[rng.choice(4200, 500, replace=False)]
    boxes = random_boxes(rng, 500, 1.0)
    np.testing.assert_allclose(decode(encode(boxes, priors), priors), boxes, atol=1e-5)


def test_iou_matches_brute_force():
    rng = np.random.default_rng(1)
    a, b = random_boxes(rng, 20), random_boxes(rng, 30)
    ref = np.array([[brute_iou(x, y) for y in b] for x in a])
    np.testing.assert_allclose(iou(a, b), ref, atol=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_nms_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    boxes = random_boxes(rng, 200, 60)
    scores = rng.random(200).astype(np.float32)
    scores[:20] = scores[20:40]  # ties resolve by index in both
    for thr in (0.3, 0.5):
        assert nms(boxes, scores, thr).tolist() == brute_nms(boxes, scores, thr)


def test_batched_nms_never_mixes_labels():
    rng = np.random.default_rng(3)
    boxes = random_boxes(rng, 150, 60)
    scores = rng.random(150).astype(np.float32)
    labels = rng.integers(1, 3, 150)
    keep = set(batched_nms(boxes, scores, labels, 0.3).tolist())
    for lab in (1, 2):
        idx = np.where(labels == lab)[0]
        expect = {int(idx[k]) for k in brute_nms(boxes[idx], scores[idx], 0.3)}
        assert {k for k in keep if labels[k] == lab} == expect


def test_cross_class_suppression_keeps_one_label_per_person():
    boxes = np.array([[0, 0, 10, 10], [0.5, 0, 10.5, 10], [20, 20, 30, 30], [0, 0, 10, 10]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    labels = np.array([1, 2, 2, 1])
    keep = cross_class_suppress(boxes, scores, labels, 0.5).tolist()
    # box 1 (mask) overlaps the higher face box 0: dropped; box 3 is the same label as 0: kept here
    assert keep == [0, 2, 3]


def test_match_assigns_each_box_its_best_anchor():
    priors = anchors(320, 320)
    truths = np.array([[0.1, 0.1, 0.2, 0.22], [0.5, 0.5, 0.9, 0.95], [0.3, 0.3, 0.31, 0.31]], np.float32)
    labels = np.array([1, 2, 1])
    loc_t, conf_t = match(truths, labels, priors, 0.35)
    ov = iou(truths, point_form(priors))
    for j in range(2):
        best = int(ov[j].argmax())
        assert conf_t[best] == labels[j]
        np.testing.assert_allclose(decode(loc_t[best : best + 1], priors[best : best + 1])[0], truths[j], atol=1e-5)
    assert set(np.unique(conf_t)) <= {0, 1, 2}
    assert (conf_t[ov.max(0) < 0.35] == 0).sum() >= (ov.max(0) < 0.35).sum() - 3
    empty_loc, empty_conf = match(np.zeros((0, 4), np.float32), np.zeros(0, np.int64), priors)
    assert not empty_conf.any() and not empty_loc.any()
