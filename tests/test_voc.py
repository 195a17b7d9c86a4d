"""Bad input is handled with a warning naming the file: real files where they exist, made-up ones otherwise."""

import shutil
import warnings

import cv2
import numpy as np
import pytest

from slfm.errors import SlfmError
from slfm.images import DataWarning, read_image
from slfm.voc import load_dataset, parse_annotation, parse_class_map

PNG_AS_JPG = ["test_00003030", "test_00003423", "test_00004440"]
RGBA_AS_JPG = ["test_00002569", "test_00003084", "test_00003135"]


def voc_xml(objects, size=(200, 100), filename="img.jpg"):
    objs = "".join(
        f"<object><name>{n}</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax>"
        f"<ymax>{b[3]}</ymax></bndbox></object>"
        for n, b in objects
    )
    return (
        f"<annotation><filename>{filename}</filename><size><width>{size[0]}</width>"
        f"<height>{size[1]}</height><depth>3</depth></size>{objs}</annotation>"
    )


def make_pair(folder, name, objects, image=None, size=(200, 100)):
    folder.mkdir(parents=True, exist_ok=True)
    if image is None:
        image = np.full((size[1], size[0], 3), 127, np.uint8)
    cv2.imwrite(str(folder / f"{name}.jpg"), image)
    (folder / f"{name}.xml").write_text(voc_xml(objects, size))
    return folder / f"{name}.xml", folder / f"{name}.jpg"


def test_moxa_1029_broken_annotation_is_skipped_with_warning(moxa):
    with pytest.warns(DataWarning, match=r"MOXA_1029\.xml.*(0x0|empty)"):
        samples = load_dataset(moxa, "moxa3k", "train")
    names = {s.image.name for s in samples}
    assert "MOXA_1029.jpg" not in names
    listed = len((moxa / "train.txt").read_text().split())
    assert len(samples) == listed - 1
    assert all(s.boxes.shape[0] == s.labels.shape[0] > 0 for s in samples)
    assert all((s.boxes[:, 2:] > s.boxes[:, :2]).all() for s in samples)


def test_moxa_test_split_and_class_map(moxa):
    samples = load_dataset(moxa, "moxa3k", "test")
    assert len(samples) == 200
    labels = np.concatenate([s.labels for s in samples])
    assert set(labels.tolist()) == {1, 2}


@pytest.mark.parametrize("name", PNG_AS_JPG + RGBA_AS_JPG)
def test_png_named_jpg_and_rgba_are_decoded_by_content(aizoo_sample, name):
    path = aizoo_sample / f"{name}.jpg"
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        img = read_image(path)
    msgs = [str(w.message) for w in rec if issubclass(w.category, DataWarning)]
    assert any("PNG file named .jpg" in m and name in m for m in msgs)
    if name in RGBA_AS_JPG:
        assert any("RGBA" in m for m in msgs)
    assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert img.shape[:2] == raw.shape[:2]
    np.testing.assert_array_equal(img, raw[:, :, :3])


def test_aizoo_sample_loads_all_200(aizoo_sample):
    samples = load_dataset(aizoo_sample.parent, "aizoo", "val-sample")
    assert len(samples) == 200
    assert {int(v) for s in samples for v in s.labels} == {1, 2}


def test_grayscale_image_becomes_three_channels(tmp_path):
    p = tmp_path / "gray.png"
    cv2.imwrite(str(p), np.arange(64 * 48, dtype=np.uint8).reshape(48, 64))
    with pytest.warns(DataWarning, match="gray.png.*grayscale"):
        img = read_image(p)
    assert img.shape == (48, 64, 3)
    assert (img[:, :, 0] == img[:, :, 2]).all()


def test_unreadable_image_is_a_clear_error(tmp_path):
    p = tmp_path / "broken.jpg"
    p.write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(SlfmError, match="broken.jpg"):
        read_image(p)
    with pytest.raises(SlfmError, match="missing.jpg"):
        read_image(tmp_path / "missing.jpg")


def test_boxes_outside_inverted_and_unknown_classes(tmp_path):
    xml, img = make_pair(
        tmp_path,
        "a",
        [
            ("face", (10, 10, 50, 60)),  # fine
            ("face_mask", (150, 20, 260, 90)),  # overshoots the 200 px width: clipped
            ("face", (80, 40, 60, 70)),  # inverted: skipped
            ("hat", (5, 5, 20, 20)),  # unknown class: skipped
            ("face", (300, 10, 350, 50)),  # wholly outside: skipped
            ("face", (0, -1, 30, 30)),  # 1 px off-by-one label: clipped silently
        ],
    )
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        s = parse_annotation(xml, img, {"face": 1, "face_mask": 2})
    msgs = [str(w.message) for w in rec]
    assert all("a.xml" in m for m in msgs)
    assert any("clipped" in m and "object 1" in m for m in msgs)
    assert any("inverted" in m and "object 2" in m for m in msgs)
    assert any("unknown class 'hat'" in m for m in msgs)
    assert any("outside" in m and "object 4" in m for m in msgs)
    assert not any("object 5" in m for m in msgs)
    np.testing.assert_array_equal(s.boxes, [[10, 10, 50, 60], [150, 20, 200, 90], [0, 0, 30, 30]])
    assert s.labels.tolist() == [1, 2, 1]


def test_size_mismatch_uses_the_real_image(tmp_path):
    xml, img = make_pair(tmp_path, "b", [("face", (10, 10, 50, 60))], size=(200, 100))
    xml.write_text(voc_xml([("face", (10, 10, 50, 60))], size=(0, 0)))
    with pytest.warns(DataWarning, match="b.xml.*0x0 disagrees with the image 200x100"):
        s = parse_annotation(xml, img, {"face": 1})
    assert (s.width, s.height) == (200, 100)


def test_missing_image_and_missing_annotation_are_skipped(tmp_path):
    root = tmp_path / "set"
    make_pair(root / "train", "ok", [("face", (10, 10, 50, 60))])
    make_pair(root / "train", "noimage", [("face", (10, 10, 50, 60))])
    (root / "train" / "noimage.jpg").unlink()
    make_pair(root / "train", "noxml", [("face", (10, 10, 50, 60))])
    (root / "train" / "noxml.xml").unlink()
    (root / "train" / "broken.xml").write_text("<annotation><object>")
    shutil.copy(root / "train" / "ok.jpg", root / "train" / "broken.jpg")
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        samples = load_dataset(root, "aizoo", "train")
    msgs = " | ".join(str(w.message) for w in rec)
    assert "noimage.xml: annotation has no image" in msgs
    assert "noxml.jpg: image has no annotation" in msgs
    assert "broken.xml: unreadable annotation" in msgs
    assert [s.image.name for s in samples] == ["ok.jpg"]


def test_wrong_layout_and_empty_dataset_are_clear_errors(tmp_path):
    with pytest.raises(SlfmError, match="no split folder 'train'"):
        load_dataset(tmp_path, "aizoo", "train")
    with pytest.raises(SlfmError, match="folder not found"):
        load_dataset(tmp_path / "nope", "moxa3k", "train")
    (tmp_path / "val").mkdir()
    with pytest.raises(SlfmError, match="no usable annotated images"):
        load_dataset(tmp_path, "aizoo", "val")


def test_voc_layout_with_user_class_map(tmp_path):
    root = tmp_path / "voc"
    make_pair(root / "JPEGImages", "x", [])
    (root / "JPEGImages" / "x.xml").unlink()
    (root / "Annotations").mkdir()
    (root / "Annotations" / "x.xml").write_text(voc_xml([("nomask", (10, 10, 50, 60)), ("mask", (60, 10, 90, 60))]))
    cmap = parse_class_map("nomask=face,mask=mask")
    samples = load_dataset(root, "voc", "train", cmap)
    assert samples[0].labels.tolist() == [1, 2]
    with pytest.raises(SlfmError, match="target must be 'face' or 'mask'"):
        parse_class_map("nomask=person")


def test_holdout_is_a_fixed_validation_split_carved_from_train(moxa):
    """``holdout`` (the committed list) and ``fit`` partition ``train``; the test split stays untouched."""
    from slfm.voc import holdout_names, load_dataset

    names = lambda split: {s.image.stem for s in load_dataset(moxa, "moxa3k", split)}  # noqa: E731
    train, fit, holdout, test = names("train"), names("fit"), names("holdout"), names("test")
    assert holdout | fit == train and not holdout & fit and not holdout & test
    assert len(holdout) == len(holdout_names("moxa3k")) == 200
