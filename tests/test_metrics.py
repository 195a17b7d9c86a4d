"""AP code checked against pycocotools (an independent implementation) on the same detections."""

import numpy as np
import pytest

from slfm.metrics import ImageDetections, evaluate, voc_ap
from tests.conftest import random_boxes

CLASSES = {1: "face", 2: "mask"}


def synthetic(seed, n_images=30, size=200):
    rng = np.random.default_rng(seed)
    gts_b, gts_l, dets = [], [], []
    for _ in range(n_images):
        k = int(rng.integers(1, 8))
        gb = random_boxes(rng, k, size)
        gl = rng.integers(1, 3, k)
        # detections: jittered copies of some ground truth plus false positives, random scores
        keep = rng.random(k) < 0.8
        jitter = rng.normal(0, rng.uniform(0.5, 12), (k, 4)).astype(np.float32)
        db = np.concatenate([(gb + jitter)[keep], random_boxes(rng, int(rng.integers(0, 5)), size)])
        db[:, 2:] = np.maximum(db[:, 2:], db[:, :2] + 1)
        dl = np.concatenate([gl[keep], rng.integers(1, 3, db.shape[0] - keep.sum())])
        flip = rng.random(dl.size) < 0.1
        dl[flip] = 3 - dl[flip]
        ds = rng.random(db.shape[0]).astype(np.float32)
        gts_b.append(gb)
        gts_l.append(gl)
        dets.append(ImageDetections(db, ds, dl))
    return dets, gts_b, gts_l


def pycocotools_stats(dets, gts_b, gts_l):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, anns, results = [], [], []
    for i, (d, gb, gl) in enumerate(zip(dets, gts_b, gts_l, strict=True)):
        images.append({"id": i, "width": 300, "height": 300})
        for b, lab in zip(gb, gl, strict=True):
            w, h = float(b[2] - b[0]), float(b[3] - b[1])
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i,
                    "category_id": int(lab),
                    "iscrowd": 0,
                    "bbox": [float(b[0]), float(b[1]), w, h],
                    "area": w * h,
                }
            )
        for b, s, lab in zip(d.boxes, d.scores, d.labels, strict=True):
            results.append(
                {
                    "image_id": i,
                    "category_id": int(lab),
                    "score": float(s),
                    "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])],
                }
            )
    gt = COCO()
    gt.dataset = {"images": images, "annotations": anns, "categories": [{"id": 1}, {"id": 2}]}
    gt.createIndex()
    ev = COCOeval(gt, gt.loadRes(results), "bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return ev


@pytest.mark.parametrize("seed", range(3))
def test_coco_ap_matches_pycocotools(seed):
    pytest.importorskip("pycocotools")
    dets, gb, gl = synthetic(seed)
    ours = evaluate(dets, gb, gl, CLASSES)
    ev = pycocotools_stats(dets, gb, gl)
    assert ours["map50_95"] == pytest.approx(ev.stats[0], abs=1e-6)
    # per class AP at IoU 0.5 with COCO's 101-point interpolation
    prec = ev.eval["precision"][0, :, :, 0, 2]  # [T=0.5, R, K, area all, maxDets 100]
    for k, name in enumerate(CLASSES.values()):
        assert ours["ap50_coco101"][name] == pytest.approx(float(np.mean(prec[:, k])), abs=1e-6)


@pytest.mark.parametrize("seed", range(3))
def test_coco_ap_by_face_size_matches_pycocotools(seed):
    pytest.importorskip("pycocotools")
    dets, gb, gl = synthetic(seed, size=600)  # box sides 6-200 px: small, medium and large faces
    by_size = evaluate(dets, gb, gl, CLASSES)["ap50_95_by_size"]
    ev = pycocotools_stats(dets, gb, gl)
    for bucket, stat in zip(("small", "medium", "large"), ev.stats[3:6], strict=True):
        assert sum(by_size[bucket]["gt_counts"].values()) > 0, bucket
        assert by_size[bucket]["ap50_95"] == pytest.approx(stat, abs=1e-6), bucket
    # the buckets differ: ignoring other sizes is not a no-op
    assert len({round(by_size[b]["ap50_95"], 6) for b in by_size}) == 3


def brute_voc_ap(scores, tps, n_gt):
    """VOC all-point AP by the textbook definition: sum over recall steps of the max precision to the right."""
    order = np.argsort(-scores, kind="mergesort")
    tp = np.asarray(tps)[order]
    precisions, recalls = [], []
    for i in range(1, len(tp) + 1):
        precisions.append(tp[:i].sum() / i)
        recalls.append(tp[:i].sum() / n_gt)
    ap, prev_r = 0.0, 0.0
    for i, r in enumerate(recalls):
        if r > prev_r:
            ap += (r - prev_r) * max(precisions[i:])
            prev_r = r
    return ap


def test_voc_ap_matches_textbook_definition():
    rng = np.random.default_rng(7)
    for _ in range(20):
        n = int(rng.integers(1, 40))
        scores = rng.random(n)
        tps = rng.random(n) < 0.6
        n_gt = int(tps.sum() + rng.integers(0, 5)) or 1
        order = np.argsort(-scores, kind="mergesort")
        tp = tps[order]
        rec = np.cumsum(tp) / n_gt
        prec = np.cumsum(tp) / np.arange(1, n + 1)
        assert voc_ap(rec, prec) == pytest.approx(brute_voc_ap(scores, tps, n_gt), abs=1e-9)


def test_perfect_and_empty_detections():
    rng = np.random.default_rng(2)
    gb = [random_boxes(rng, 5, 100) for _ in range(4)]
    gl = [np.array([1, 2, 1, 2, 1]) for _ in range(4)]
    perfect = [ImageDetections(b, np.linspace(1, 0.5, 5, dtype=np.float32), lab) for b, lab in zip(gb, gl, strict=True)]
    r = evaluate(perfect, gb, gl, CLASSES)
    assert r["map50"] == pytest.approx(1.0) and r["map50_95"] == pytest.approx(1.0)
    empty = [ImageDetections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, int))] * 4
    assert evaluate(empty, gb, gl, CLASSES)["map50"] == 0.0


def test_bootstrap_spread_is_zero_for_perfect_detections_and_not_otherwise():
    from slfm.evaluate import bootstrap_map50

    rng = np.random.default_rng(0)
    boxes = [random_boxes(rng, 3, 200) for _ in range(20)]
    labels = [np.array([1, 2, 1]) for _ in range(20)]
    perfect = [
        ImageDetections(b.astype(np.float32), np.ones(3, np.float32), lab) for b, lab in zip(boxes, labels, strict=True)
    ]
    b = bootstrap_map50(perfect, boxes, labels, 30)
    assert b["resamples"] == 30 and b["std"] == 0 and b["p5"] == b["p95"] == pytest.approx(1.0)
    # half the images detected at random places: resampling moves mAP
    noisy = [
        d if i % 2 else ImageDetections(random_boxes(rng, 3, 200).astype(np.float32), d.scores, d.labels)
        for i, d in enumerate(perfect)
    ]
    b = bootstrap_map50(noisy, boxes, labels, 30)
    assert b["std"] > 0.01 and b["p5"] < b["p95"]
    assert bootstrap_map50(noisy, boxes, labels, 30) == b  # seeded: the same spread on a rerun


def test_resampled_map50_from_per_image_matches_equals_a_full_evaluation():
    from slfm.metrics import map50_from_matches, voc_image_matches

    dets, gb, gl = synthetic(5, n_images=25)
    matches = voc_image_matches(dets, gb, gl, CLASSES)
    assert map50_from_matches(matches) == pytest.approx(evaluate(dets, gb, gl, CLASSES)["map50"], abs=1e-12)
    rng = np.random.default_rng(3)
    for _ in range(5):
        idx = rng.integers(0, len(dets), len(dets))
        full = evaluate([dets[i] for i in idx], [gb[i] for i in idx], [gl[i] for i in idx], CLASSES)["map50"]
        assert map50_from_matches(matches, idx) == pytest.approx(full, abs=1e-12)
