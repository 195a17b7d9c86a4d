"""report.png: pass limits drawn, failures marked, latency readable when one row is far slower."""

from matplotlib.collections import LineCollection

from slfm.device_tests.report import figure, map_limit, write
from slfm.device_tests.thresholds import checks, load_thresholds


def _row(name, map50, p50, ref=0.681):
    row = {"artifact": name, "precision": "int8", "target": "local", "map50": map50, "map50_drop": ref - map50}
    row |= {"latency_ms": {"p50": p50}, "snr_db": 20.0}
    row["checks"] = checks(row, load_thresholds()["int8"])
    row["passed"] = all(c["passed"] for c in row["checks"])
    return row


def _report():
    rows = [_row("a_int8.tflite", 0.675, 5.0), _row("b_int8.pte", 0.569, 12.0), _row("c_int8.tflite", 0.672, 153.0)]
    return {"reference": {"map50": 0.681, "latency_ms": {"p50": 20.0}}, "artifacts": rows, "target_summary": "local"}


def test_chart_draws_limits_marks_failures_and_logs_latency(tmp_path):
    report = _report()
    limit = 0.681 - load_thresholds()["int8"]["max_map50_drop"]
    assert map_limit(report, report["artifacts"][0]) == limit
    assert [a["passed"] for a in report["artifacts"]] == [True, False, True]
    fig = figure(report)
    maps, lats = fig.axes[:2]
    drawn = [seg for c in maps.collections if isinstance(c, LineCollection) for seg in c.get_segments()]
    assert len(drawn) == 3 and all(abs(seg[0][1] - limit) < 1e-9 for seg in drawn)
    assert maps.get_ylim()[0] < 0.569 and maps.get_ylim()[0] > 0.3  # zoomed, the failing bar still in view
    hatches = [p.get_hatch() for p in maps.patches]
    assert hatches[2] == "//" and hatches[1] is None and hatches[3] is None
    assert any(t.get_text() == "FAIL: map50_drop" for t in maps.texts)
    assert lats.get_yscale() == "log"
    report |= {"command": "x", "date": "d", "machine": {"platform": "p", "cpu_count": 2, "python": "3", "torch": "t"}}
    report["data"] = []
    assert write(report, tmp_path / "report")["png"].stat().st_size > 10_000
