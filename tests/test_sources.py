"""Training on several data sources at once: pairing of the options, default splits, weighting, per-source
validation recorded in the checkpoint and the log."""

import csv
from collections import Counter

import pytest
import torch

from slfm.checkpoint import read_checkpoint
from slfm.config import ModelConfig
from slfm.errors import SlfmError
from slfm.sources import Source, default_splits, zip_sources
from slfm.train import TrainConfig, mean_result, train, training_sampler
from slfm.voc import dataset_pairs, load_dataset


def test_default_splits_use_the_committed_holdout_never_a_test_split():
    assert default_splits("moxa3k") == ("fit", "holdout")
    assert default_splits("aizoo") == ("fit", "holdout")
    assert default_splits("voc") == ("train", "val")  # no committed list for a user's own layout
    # an explicit train split keeps the old behaviour (and old checkpoints resume as they ran)
    assert default_splits("moxa3k", "train") == ("train", "test")
    assert default_splits("aizoo", "fit", "") == ("fit", "")


def test_holdout_and_fit_partition_the_training_split(moxa):
    train_ = {image.stem for _, image in dataset_pairs(moxa, "moxa3k", "train")}
    fit = {s.image.stem for s in load_dataset(moxa, "moxa3k", "fit")}
    hold = {s.image.stem for s in load_dataset(moxa, "moxa3k", "holdout")}
    assert not fit & hold
    assert len(hold) == 200 and fit | hold <= train_ and len(fit | hold) >= len(train_) - 1  # MOXA_1029 is broken


def test_repeated_options_pair_by_position(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    srcs = zip_sources([a, b], ["aizoo", "moxa3k"], [], [1.0, 3.0])
    assert [(s.dataset, s.weight, s.name) for s in srcs] == [("aizoo", 1.0, "aizoo"), ("moxa3k", 3.0, "moxa3k")]
    assert srcs[0].data == str(a.resolve())
    mixed = zip_sources([a, b], ["voc", "aizoo"], [], [], {"nomask": 1})
    assert mixed[0].class_map == {"nomask": 1} and mixed[1].class_map is None  # aizoo keeps its own class map
    same = zip_sources([a, b], ["voc"], ["train"])  # one value applies to every source
    assert [(s.dataset, s.split, s.name) for s in same] == [("voc", "train", "voc"), ("voc", "train", "voc2")]
    with pytest.raises(SlfmError, match="2 --dataset options for 3 --data"):
        zip_sources([a, b, a], ["voc", "aizoo"])
    with pytest.raises(SlfmError, match="--source-weight 0"):
        zip_sources([a], ["voc"], [], [0.0])


def test_weighted_sources_are_drawn_in_proportion():
    weights = [1.0] * 100 + [3.0] * 100
    sampler = training_sampler(list(range(200)), weights, seed=0)
    drawn = Counter(i >= 100 for i in sampler)
    assert sum(drawn.values()) == 200
    assert 0.65 < drawn[True] / 200 < 0.85  # 3:1 -> 75 %
    plain = list(training_sampler(list(range(200)), [1.0] * 200, seed=0))
    assert sorted(plain) == list(range(200))  # equal weights: a permutation, every image once


def test_mean_result_weighs_each_source_equally():
    by = {"a": {"map50": 0.9, "ap50": {"face": 0.8, "mask": 1.0}}, "b": {"map50": 0.5, "ap50": {"face": 0.4}}}
    m = mean_result(by)
    assert m["map50"] == pytest.approx(0.7) and m["ap50"] == pytest.approx({"face": 0.6, "mask": 1.0})
    assert mean_result({"a": by["a"]}) is by["a"] and mean_result({}) == {}


@pytest.mark.slow
def test_two_sources_train_and_validate_separately(moxa, aizoo_sample, tmp_path):
    sources = [
        Source(str(moxa), "moxa3k", "fit", val_split="holdout", name="moxa3k"),
        Source(str(aizoo_sample.parent), "aizoo", aizoo_sample.name, val_split=aizoo_sample.name, weight=2.0),
    ]
    cfg = TrainConfig(
        data=str(moxa),
        sources=[s.to_dict() for s in sources],
        out=str(tmp_path),
        epochs=1,
        batch_size=8,
        limit=8,
        val_limit=4,
        init="none",
        workers=0,
        negative_prob=0.25,
    )
    train(cfg, ModelConfig(image_size=128), progress=False)
    ckpt = read_checkpoint(tmp_path / "last.pt")
    recorded = {s["name"]: s for s in ckpt["data_sources"]}
    assert set(recorded) == {"moxa3k", "aizoo"}
    assert recorded["moxa3k"]["split"] == "fit" and recorded["moxa3k"]["val_split"] == "holdout"
    assert (
        recorded["aizoo"]["images"] == 8 and recorded["aizoo"]["val_images"] == 4 and recorded["aizoo"]["weight"] == 2
    )
    per = ckpt["metrics"]["sources"]
    assert set(per) == {"moxa3k", "aizoo"}
    assert ckpt["metrics"]["map50"] == pytest.approx((per["moxa3k"]["map50"] + per["aizoo"]["map50"]) / 2)
    with open(tmp_path / "log.csv") as f:
        row = list(csv.DictReader(f))[0]
    assert row["map50_by_source"].startswith("moxa3k=") and " aizoo=" in row["map50_by_source"]
    assert TrainConfig.from_dict(ckpt["train_config"]).source_list()[1].weight == 2.0  # a resume sees the sources
    assert torch.isfinite(torch.tensor(float(row["loss"])))


def test_teachers_pair_by_position_and_resolve(tmp_path):
    from slfm.checkpoint import bundled_checkpoint

    a, b = tmp_path / "a", tmp_path / "b"
    srcs = zip_sources([a, b], ["moxa3k", "aizoo"], teachers=["none", "aizoo"])
    assert srcs[0].teacher is None and srcs[1].teacher == str(bundled_checkpoint("aizoo"))
    assert [s.teacher for s in zip_sources([a, b], ["voc"])] == [None, None]
    with pytest.raises(SlfmError, match="--teacher .*missing.pt: no such checkpoint"):
        zip_sources([a], ["voc"], teachers=[str(tmp_path / "missing.pt")])
    with pytest.raises(SlfmError, match="3 --teacher options for 2 --data"):
        zip_sources([a, b], ["voc"], teachers=["none"] * 3)


def _batch(model_cfg, sources: list[int]):
    from slfm.anchors import anchors

    torch.manual_seed(0)
    n, s = len(sources), model_cfg.image_size
    priors = anchors(s, s, model_cfg.min_sizes, model_cfg.steps)
    return (
        torch.randn(n, 3, s, s),
        torch.zeros(n, len(priors), 4),
        torch.zeros(n, len(priors), dtype=torch.int64),
        torch.zeros(n, 1, -(-s // 16), -(-s // 16)),
        torch.tensor(sources),
    )


def test_each_source_learns_from_its_own_teacher_and_negatives_from_none():
    """The distillation term routes each sample to its source's teacher: zero where the teacher is the student
    itself, positive where it is another model, nothing for face-free samples (source -1)."""
    from slfm.loss import LossWeights
    from slfm.model import SLFMDet
    from slfm.train import FloatTraining

    cfg = ModelConfig(image_size=96)
    torch.manual_seed(1)
    student, other = SLFMDet(cfg).eval(), SLFMDet(cfg).eval()
    mode = FloatTraining(student)
    mode.teachers = {0: student, 1: other}
    weights = LossWeights()
    same = mode.loss(student, _batch(cfg, [0, 0]), weights, None)
    assert float(same["distill"].detach()) == pytest.approx(0.0, abs=1e-6)
    mixed = mode.loss(student, _batch(cfg, [0, 1]), weights, None)
    assert float(mixed["distill"].detach()) > 1e-4
    assert float(mixed["loss"].detach()) == pytest.approx(
        float(mixed["loc"].detach()) * weights.box
        + float(mixed["conf"].detach())
        + weights.heatmap * float(mixed["heatmap"].detach())
        + float(mixed["distill"].detach()),
        rel=1e-5,
    )
    negatives = mode.loss(student, _batch(cfg, [-1, -1]), weights, None)
    assert float(negatives["distill"].detach()) == 0.0


@pytest.mark.slow
def test_training_with_a_teacher_records_it_and_logs_the_distillation(moxa, tmp_path):
    from slfm.checkpoint import save_checkpoint
    from slfm.model import SLFMDet

    torch.manual_seed(2)
    teacher = SLFMDet(ModelConfig(image_size=128))
    save_checkpoint(tmp_path / "teacher.pt", teacher, teacher.config)
    (src,) = zip_sources([moxa], ["moxa3k"], ["fit"], teachers=[str(tmp_path / "teacher.pt")], val_split="")
    cfg = TrainConfig(
        data=str(moxa),
        sources=[src.to_dict()],
        out=str(tmp_path / "run"),
        epochs=1,
        batch_size=4,
        limit=8,
        init="none",
        workers=0,
    )
    train(cfg, ModelConfig(image_size=128), progress=False)
    ckpt = read_checkpoint(tmp_path / "run" / "last.pt")
    assert ckpt["data_sources"][0]["teacher"] == str((tmp_path / "teacher.pt").resolve())
    with open(tmp_path / "run" / "log.csv") as f:
        row = list(csv.DictReader(f))[0]
    assert float(row["distill"]) > 0


def test_a_teacher_whose_outputs_mean_something_else_is_refused(tmp_path):
    from slfm.checkpoint import save_checkpoint
    from slfm.model import SLFMDet
    from slfm.sources import LoadedSource
    from slfm.train import FloatTraining

    other = SLFMDet(ModelConfig(image_size=96, classes=("face", "mask", "hat")))
    save_checkpoint(tmp_path / "t.pt", other, other.config)
    src = Source(str(tmp_path), "voc", teacher=str(tmp_path / "t.pt"))
    with pytest.raises(SlfmError, match=r"t\.pt: its classes differ"):
        FloatTraining(SLFMDet(ModelConfig(image_size=96))).setup([LoadedSource(src, [], [], "train", "")], "cpu")
