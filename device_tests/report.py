"""Parity reports: JSON (schema ``slfm-parity/1``), a Markdown table and a PNG chart (mAP and latency per
artifact). Written again after every artifact, so an interrupted run keeps what it measured."""

from __future__ import annotations

import json
from pathlib import Path

from slfm.outputs import atomic_path, write_text

SCHEMA = "slfm-parity/1"


def _fmt(v, spec: str = ".3f") -> str:
    return "–" if v is None else format(v, spec)


def markdown(report: dict) -> str:
    ref = report["reference"]
    m = report["machine"]
    lines = [
        f"# Parity: artifacts vs PyTorch ({report['target_summary']})",
        "",
        f"Command: `{report['command']}`  ",
        f"Date: {report['date']}  ",
        f"Host: {m['platform']}, {m['cpu_count']} CPUs, Python {m['python']}, torch {m['torch']}  ",
        f"Reference: `{ref.get('checkpoint')}` (PyTorch eager fp32), mAP@0.5 {_fmt(ref.get('map50'))}, "
        f"p50 {_fmt(ref.get('latency_ms', {}).get('p50'), '.1f')} ms ({ref.get('threads')} thread(s))  ",
        "Images: " + ", ".join(f"{d['name']} ({d['images']})" for d in report["data"]),
        "",
        "| artifact | precision | target / runtime | mAP@0.5 | ΔmAP | det. recall | det. precision | SNR dB | "
        "max abs err | p50 ms | p90 ms | threads | size MB | peak mem MB | result |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for a in report["artifacts"]:
        lat = a.get("latency_ms") or {}
        result = {True: "pass", False: "**FAIL**", None: a.get("status", "skipped")}[a.get("passed")]
        if a.get("error"):
            result += f": {a['error']}"
        div = (a.get("divergence") or {}).get("first_divergent_layer")
        if div:
            result += f" (first divergent layer: `{div['module']}`, {div['snr_db']:.1f} dB)"
        size_mb = a["size_bytes"] / 1e6 if a.get("size_bytes") is not None else None
        dmap = 0.0 - a["map50_drop"] if a.get("map50_drop") is not None else None
        lines.append(
            f"| {Path(a['artifact']).name} | {a['precision']} | {a['target']} / {a.get('runtime') or '–'} | "
            f"{_fmt(a.get('map50'))} | {_fmt(dmap, '+.3f')} | "
            f"{_fmt(a.get('detection_recall'))} | {_fmt(a.get('detection_precision'))} | "
            f"{_fmt(a.get('snr_db'), '.1f')} | "
            f"{_fmt(a.get('max_abs_error'), '.2e')} | {_fmt(lat.get('p50'), '.1f')} | {_fmt(lat.get('p90'), '.1f')} | "
            f"{a.get('threads') or '–'} | {_fmt(size_mb, '.2f')} | {_fmt(a.get('peak_memory_mb'), '.0f')} | {result} |"
        )
    lines += [
        "",
        "SNR: the lower of the two outputs against the reference, all images: class probabilities on every anchor, "
        "box offsets on the anchors the reference scores >= 0.02 for face or mask (the only ones that can become "
        "detections; the all-anchor figure is in the JSON as loc_all_anchors). "
        "Detections matched to the reference's at the demo threshold (IoU 0.5, same label). Latency: the model call "
        "only, warm-up excluded. Peak memory: in-process rows count what loading and running added to the harness "
        "process; device rows are the runner process's peak RSS.",
        "",
    ]
    return "\n".join(lines)


def chart(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [a for a in report["artifacts"] if a.get("map50") is not None or a.get("latency_ms")]
    labels = ["PyTorch fp32\n(reference)"] + [
        f"{Path(a['artifact']).name}\n{a['target']} {a.get('runtime_short', '')}" for a in rows
    ]
    maps = [report["reference"].get("map50") or 0] + [a.get("map50") or 0 for a in rows]
    lats = [report["reference"].get("latency_ms", {}).get("p50") or 0] + [
        (a.get("latency_ms") or {}).get("p50") or 0 for a in rows
    ]
    colors = ["#777777"] + ["#2a9d8f" if a.get("passed") else "#e76f51" for a in rows]
    fig, axes = plt.subplots(1, 2, figsize=(max(8, 1.6 * len(labels) + 2), 4.5), dpi=110)
    for ax, vals, title in ((axes[0], maps, "mAP@0.5"), (axes[1], lats, "latency p50 (ms)")):
        bars = ax.bar(range(len(vals)), vals, color=colors)
        ax.set_xticks(range(len(vals)), labels, rotation=30, ha="right", fontsize=7)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
        for b, v in zip(bars, vals, strict=True):
            ax.annotate(
                f"{v:.3f}" if title.startswith("mAP") else f"{v:.1f}",
                (b.get_x() + b.get_width() / 2, v),
                ha="center",
                va="bottom",
                fontsize=7,
            )
    fig.suptitle(f"Parity vs PyTorch ({report['target_summary']}); green pass, red fail", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write(report: dict, out: Path, with_chart: bool = True) -> dict[str, Path]:
    """Atomically write OUT.json and OUT.md (and OUT.png); returns the paths."""
    paths = {"json": out.with_suffix(".json"), "md": out.with_suffix(".md")}
    for key, text in (("json", json.dumps(report, indent=1) + "\n"), ("md", markdown(report))):
        write_text(paths[key], text)
    if with_chart and report["artifacts"]:
        paths["png"] = out.with_suffix(".png")
        with atomic_path(paths["png"]) as tmp:
            chart(report, tmp)
    return paths
