"""Issue 15: artifacts are data, one bad input never costs the others, no silent wrong answers.

Each test plants the case the issue found (a crafted file, a bad option, an interrupted save) and checks the
command's answer: one clear line naming the file or value, and every other input's result kept."""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from slfm.cli import main


def invoke(*args) -> tuple[int, str]:
    r = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return r.exit_code, r.output


class _RunsCode:
    """A pickle that creates ``marker`` when unpickled: loading it runs code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def crafted_pt2(path: Path, marker: Path) -> Path:
    """A real torch.export archive whose sample inputs are a code-running pickle: ``torch.export.load`` falls
    back to an unguarded unpickle on it and runs the code (checked on torch 2.13)."""

    class M(torch.nn.Module):
        def forward(self, x):
            return x + 1, x * 2

    ok = path.with_name("ok.pt2")
    torch.export.save(torch.export.export(M(), (torch.zeros(1, 3),)), str(ok))
    evil = io.BytesIO()
    torch.save(_RunsCode(marker), evil)
    with zipfile.ZipFile(ok) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            dst.writestr(info, evil.getvalue() if info.filename.endswith("sample_inputs/model.pt") else data)
    ok.unlink()
    return path


@pytest.fixture(scope="module")
def tflite_fp32():
    """(reference checkpoint, a small real fp32 .tflite + sidecar), cached across sessions by the parity tests."""
    from test_parity_support import artifacts

    return artifacts()


def artifact_copy(src: Path, folder: Path, name: str | None = None, **sidecar) -> Path:
    """``src`` and its sidecar copied into ``folder`` (sidecar fields replaced by ``sidecar``)."""
    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / (name or src.name)
    shutil.copyfile(src, dst)
    meta = json.loads(Path(str(src) + ".json").read_text())
    meta.update(sidecar)
    Path(str(dst) + ".json").write_text(json.dumps(meta))
    return dst


PARITY_FAST = ["--runs", "1", "--warmup", "0", "--no-tflite-runtime", "--layers", "never"]


# ------------------------------------------------------------------------------------------ 1. artifacts are data


def test_crafted_pt2_is_never_loaded(tmp_path):
    from slfm.device_tests.reference import load_fake_quant
    from slfm.errors import SlfmError

    marker = tmp_path / "ran"
    evil = crafted_pt2(tmp_path / "fq.pt2", marker)
    with pytest.raises(SlfmError, match="fq.pt2: a torch.export program"):
        load_fake_quant(evil)
    assert not marker.exists()
    code, out = invoke("parity", tmp_path, "--fake-quant", evil)  # refused at the option, before any work
    assert code == 2 and "torch.export program (.pt2) can hold code" in out and not marker.exists()


def test_parity_on_a_folder_whose_sidecar_names_a_crafted_pt2_runs_no_code(tflite_fp32, tmp_path):
    ckpt, tfl = tflite_fp32
    folder = tmp_path / "downloaded"
    marker = tmp_path / "ran"
    crafted_pt2(folder.parent / "fq.pt2", marker)
    art = artifact_copy(tfl, folder, precision="int8", extra={"fake_quant": "../fq.pt2"})
    out = tmp_path / "rep"
    code, text = invoke("parity", folder, "--checkpoint", ckpt, "--limit", "1", *PARITY_FAST, "--out", out)
    assert not marker.exists()
    row = json.loads(out.with_suffix(".json").read_text())["artifacts"][0]
    assert row["artifact"] == str(art) and row["status"] == "ok"  # the artifact itself was still checked
    assert "fq.pt2: a torch.export program" in row["fake_quant_note"] and "vs_fake_quant" not in row
