"""Parity reports: JSON (schema ``slfm-parity/1``), a Markdown table and a PNG chart (mAP and latency per
artifact). Written again after every artifact, so an interrupted run keeps what it measured."""

from __future__ import annotations

import json
from pathlib import Path

from slfm.outputs import atomic_path, write_text

SCHEMA = "slfm-parity/1"


def targets_table(targets: list[dict]) -> list[str]:
    """A report's "## Targets" section: one row per target with its measured value and met (yes / **no** / n/a
    where a row it needs was not measured)."""
    met = {True: "yes", False: "**no**", None: "n/a"}
    return [
        "",
        "## Targets",
        "",
        "| target | measured | met |",
        "| --- | --- | --- |",
        *(f"| {t['target']} | {t['value']} | {met[t['passed']]} |" for t in targets),
    ]


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


def map_limit(report: dict, artifact: dict) -> float | None:
    """The lowest mAP@0.5 that passes for this artifact: the reference's minus its precision's allowed drop."""
    ref = report["reference"].get("map50")
    drop = next((c["threshold"] for c in artifact.get("checks") or [] if c["name"] == "map50_drop"), None)
    return None if ref is None or drop is None else ref - drop


def failed_checks(artifact: dict) -> list[str]:
    return [c["name"] for c in artifact.get("checks") or [] if not c["passed"]]


def figure(report: dict):
    """mAP@0.5 per artifact with its pass limit drawn on its bar, and p50 latency on a log scale (one slow row
    does not flatten the others); failing rows red, hatched and labelled with the checks they failed."""
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
    failed = [False] + [a.get("passed") is False for a in rows]
    colors = ["#777777"] + ["#2a9d8f" if a.get("passed") else "#e76f51" for a in rows]
    fig, axes = plt.subplots(1, 2, figsize=(max(8, 1.6 * len(labels) + 2), 4.8), dpi=110)
    for ax, vals, title in ((axes[0], maps, "mAP@0.5"), (axes[1], lats, "latency p50 (ms, log scale)")):
        bars = ax.bar(range(len(vals)), vals, color=colors)
        for bar, bad in zip(bars, failed, strict=True):
            if bad:
                bar.set_hatch("//")
                bar.set_edgecolor("#7a1f0c")
        ax.set_xticks(range(len(vals)), labels, rotation=30, ha="right", fontsize=7)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3, which="both")
        for b, v in zip(bars, vals, strict=True):
            ax.annotate(
                f"{v:.3f}" if title.startswith("mAP") else f"{v:.1f}",
                (b.get_x() + b.get_width() / 2, v),
                ha="center",
                va="bottom",
                fontsize=7,
            )
    if any(v > 0 for v in lats):
        from matplotlib.ticker import ScalarFormatter

        axes[1].set_yscale("log")
        for axis in (axes[1].yaxis,):
            axis.set_major_formatter(ScalarFormatter())
            axis.set_minor_formatter(ScalarFormatter())
            axis.set_tick_params(which="minor", labelsize=6)
    limits = [None] + [map_limit(report, a) for a in rows]
    shown = [v for v in maps if v > 0] + [lim for lim in limits if lim is not None]
    if shown:  # zoomed on the values and limits: a 0.01 drop is visible
        lo, hi = min(shown), max(shown)
        axes[0].set_ylim(max(0.0, lo - 0.25 * (hi - lo) - 0.02), min(1.0, hi + 0.15 * (hi - lo) + 0.01))
        axes[0].set_title("mAP@0.5 (axis zoomed)")
    for i, lim in enumerate(limits):
        if lim is not None:
            axes[0].hlines(lim, i - 0.45, i + 0.45, colors="black", linestyles="--", linewidth=1.2)
    if any(lim is not None for lim in limits):
        axes[0].plot([], [], "k--", linewidth=1.2, label="pass limit: reference mAP minus the allowed drop")
        axes[0].legend(fontsize=7, loc="lower left")
    for i, a in enumerate(rows, 1):
        names = failed_checks(a)
        if names:
            axes[0].annotate(
                "FAIL: " + ", ".join(names),
                (i, axes[0].get_ylim()[0] + 0.5 * (maps[i] - axes[0].get_ylim()[0])),
                ha="center",
                va="center",
                rotation=90,
                fontsize=6,
                color="#3b0d05",
            )
    fig.suptitle(
        f"Parity vs PyTorch ({report['target_summary']}); green pass, red hatched fail, dashes: mAP pass limit",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def chart(report: dict, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig = figure(report)
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
