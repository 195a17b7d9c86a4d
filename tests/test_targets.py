"""Heatmap targets, augmentation and the training dataset on real images."""

import numpy as np
import torch

from slfm.augment import augment
from slfm.config import ModelConfig
from slfm.data import DetectionDataset
from slfm.heatmap import gaussian_heatmap
from slfm.images import read_image


def test_face_heatmap_peaks_at_the_box_centre_and_mask_on_its_lower_half():
    face = gaussian_heatmap(np.array([[0.25, 0.25, 0.75, 0.75]], np.float32), np.array([1]), 20, 20)
    assert face.shape == (20, 20)
    assert np.unravel_index(face.argmax(), face.shape) in {(9, 9), (9, 10), (10, 9), (10, 10)}
    assert face.max() > 0.9 and face[0, 0] < 1e-3
    mask = gaussian_heatmap(np.array([[0.25, 0.25, 0.75, 0.75]], np.float32), np.array([2]), 20, 20)
    peak_row = np.unravel_index(mask.argmax(), mask.shape)[0]
    assert 12 <= peak_row <= 13  # centre of the lower half (y 0.5..0.75 -> rows 10..15)
    assert mask[7, 10] < 0.05  # upper half of the face stays cold


def test_augment_keeps_boxes_inside_and_normalised(moxa):
    from slfm.voc import load_dataset

    s = load_dataset(moxa, "moxa3k", "train", limit=5)[0]
    img = read_image(s.image)
    for seed in range(20):
        out, boxes, labels = augment(img, s.boxes, s.labels, 320, np.random.default_rng(seed))
        assert out.shape == (320, 320, 3)
        assert boxes.shape[0] == labels.shape[0] >= 1
        assert (boxes >= 0).all() and (boxes <= 1 + 1e-6).all()
        assert (boxes[:, 2:] > boxes[:, :2]).all()


def test_full_image_prob_letterboxes_whole_images_as_at_test_time(moxa):
    from slfm.core.image import letterbox
    from slfm.voc import load_dataset

    s = next(x for x in load_dataset(moxa, "moxa3k", "train", limit=40) if len(x.boxes) >= 3)
    img = read_image(s.image)
    _, scale = letterbox(img, 320)
    whole = s.boxes * scale / 320
    zoom = []
    for seed in range(12):
        out, boxes, labels = augment(img, s.boxes, s.labels, 320, np.random.default_rng(seed), full_image_prob=1.0)
        assert out.shape == (320, 320, 3)
        assert np.array_equal(labels, s.labels)
        # every box survives, at the letterbox scale, mirrored or not
        mirrored = whole.copy()
        mirrored[:, [0, 2]] = img.shape[1] * scale / 320 - whole[:, [2, 0]]
        assert np.allclose(boxes, whole, atol=1e-5) or np.allclose(boxes, mirrored, atol=1e-5)
        _, cropped, _ = augment(img, s.boxes, s.labels, 320, np.random.default_rng(seed), full_image_prob=0.0)
        zoom.append(np.median(cropped[:, 2] - cropped[:, 0]) / np.median(whole[:, 2] - whole[:, 0]))
    # without it, the reference's square crops enlarge faces beyond the whole-image letterbox
    assert min(zoom) > 1.0 and np.mean(zoom) > 1.5


def test_dataset_is_deterministic_per_epoch_and_index(moxa):
    from slfm.voc import load_dataset

    samples = load_dataset(moxa, "moxa3k", "train", limit=4)
    ds = DetectionDataset(samples, ModelConfig(image_size=320), train=True, seed=3)
    x1, loc1, conf1, heat1 = ds[1]
    x2, *_ = ds[1]
    ds.set_epoch(1)
    x3, *_ = ds[1]
    assert torch.equal(x1, x2) and not torch.equal(x1, x3)
    assert x1.shape == (3, 320, 320) and loc1.shape == (4200, 4) and heat1.shape == (1, 20, 20)
    assert int((conf1 > 0).sum()) >= 1
    assert float(heat1.max()) > 0.5
