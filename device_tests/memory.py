"""Peak resident memory of work done in this process (Linux: VmHWM, reset through /proc/self/clear_refs)."""

from __future__ import annotations

import resource
from pathlib import Path

STATUS = Path("/proc/self/status")


def _status_kb(key: str) -> float | None:
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith(key + ":"):
                return float(line.split()[1])
    except OSError:
        return None
    return None


class PeakMemory:
    """``with PeakMemory() as m: ...`` then ``m.peak_mb`` (process peak RSS during the block) and
    ``m.delta_mb`` (peak minus the RSS at entry: what the block itself added)."""

    def __enter__(self) -> PeakMemory:
        self.reset = False
        try:
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
            self.reset = True
        except OSError:
            pass
        self.start_kb = _status_kb("VmRSS") or 0.0
        return self

    def __exit__(self, *exc) -> None:
        hwm = _status_kb("VmHWM") if self.reset else None
        if hwm is None:
            hwm = float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        self.peak_mb = hwm / 1024
        self.delta_mb = max(hwm - self.start_kb, 0.0) / 1024
