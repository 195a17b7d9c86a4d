"""``slfm compact``: a small voc copy of a split whose boxes still fit their (shrunk) images."""

import numpy as np
import pytest
from click.testing import CliRunner

from slfm.cli import main
from slfm.images import read_image
from slfm.voc import load_dataset


@pytest.fixture(scope="module")
def mixed_split(moxa, tmp_path_factory):
    """Three Moxa3K training images over 640 px and three under it, as a split of a moxa3k-layout folder."""
    samples = load_dataset(moxa, "moxa3k", "train", limit=600)
    big = [s for s in samples if max(s.width, s.height) > 640][:3]
    small = [s for s in samples if max(s.width, s.height) <= 400][:3]
    if len(big) < 3 or len(small) < 3:
        pytest.skip("the first 600 Moxa3K training images have too few large or small images")
    root = tmp_path_factory.mktemp("mixed")
    for d in ("images", "annotations"):
        (root / d).symlink_to(moxa / d)
    (root / "six.txt").write_text("\n".join(f"Moxa3K/images/{s.image.name}" for s in big + small) + "\n")
    return root, {s.image.stem: s for s in big + small}


@pytest.mark.parametrize("fmt", ["jpg", "webp"])
def test_compact_shrinks_large_images_and_scales_their_boxes(mixed_split, tmp_path, fmt):
    root, originals = mixed_split
    out = tmp_path / "small"
    r = CliRunner().invoke(
        main,
        ["compact", "--data", str(root), "--dataset", "moxa3k", "--split", "six", "--out", str(out)]
        + ["--max-side", "640", "--quality", "80", "--format", fmt],
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    assert "6 images (3 resized)" in r.output
    copied = load_dataset(out, "voc", "six")
    assert sorted(s.image.stem for s in copied) == sorted(originals)
    for s in copied:
        o = originals[s.image.stem]
        h, w = read_image(s.image).shape[:2]
        assert (w, h) == (s.width, s.height) and max(w, h) <= 640
        np.testing.assert_array_equal(s.labels, o.labels)
        scale = np.array([w / o.width, h / o.height] * 2)
        # boxes follow the image to a pixel of the new size
        np.testing.assert_allclose(s.boxes, o.boxes * scale, atol=1.0)
        if max(o.width, o.height) <= 640:
            assert s.image.read_bytes() == o.image.read_bytes()  # small JPEGs are copied untouched
        else:
            assert s.image.suffix == f".{fmt}" and s.image.stat().st_size < o.image.stat().st_size


def test_compact_names_a_bad_setting(mixed_split, tmp_path):
    root, _ = mixed_split
    r = CliRunner().invoke(
        main,
        ["compact", "--data", str(root), "--dataset", "moxa3k", "--split", "six", "--out", str(tmp_path / "x")]
        + ["--quality", "0"],
    )
    assert r.exit_code == 2 and "Invalid value for '--quality'" in r.output  # refused at the option
