"""What one daily report costs: the store read and figures, then drawing the page.

    .venv/bin/python bench/bench_report.py [--repeat 3]

Writes the simulated day of tests/gateway/report_day.py (11 h of 1 Hz oximetry, a thermometer
every 30 min, six alerts) into a temporary store, then times, best of `--repeat`:
1. `read_report_data` (two metrics' readings of the day, the 1 Hz grids, S6's figures, gaps,
   alerts);
2. `draw_report` as PDF and as PNG, in Chinese;
3. the simple alternative for the charts: drawing the 86,400 one-second points of each series
   instead of the 1,440 per-minute median / range the report draws, with the PDF's size.
Prints figures only; asserts nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gateway.report_data import ReportData, read_report_data  # noqa: E402
from gateway.report_figures import MinuteSeries  # noqa: E402
from gateway.report_render import draw_report  # noqa: E402
from gateway.store import Store  # noqa: E402
from tests.gateway import report_day  # noqa: E402


def best_s(action: Callable[[], object], repeat: int) -> tuple[float, object]:
    """The shortest CPU time of `repeat` runs, and the last result."""
    times = []
    result: object = None
    for _ in range(repeat):
        start = time.process_time()
        result = action()
        times.append(time.process_time() - start)
    return min(times), result


def one_hz(data: ReportData, truth: report_day.DayTruth) -> ReportData:
    """The same report with every second as a 'minute' (86,400 points per chart)."""
    spo2 = truth.spo2_percent
    pulse = np.where(np.isnan(spo2), np.nan, 70.0)
    return dataclasses.replace(
        data,
        spo2=MinuteSeries(spo2, spo2, spo2),
        pulse=MinuteSeries(pulse, pulse, pulse),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "pulsegate.db", "gw-bench")
        try:
            truth = report_day.write_day(store)
            draw_report(
                read_report_data(store, report_day.PATIENT, report_day.DAY, 28_800), "png"
            )  # warm-up: font cache, imports

            def read() -> ReportData:
                return read_report_data(store, report_day.PATIENT, report_day.DAY, 28_800)

            read_s, data = best_s(read, args.repeat)
        finally:
            store.close()
    assert isinstance(data, ReportData)
    print(f"read_report_data (store read, grids, figures): {read_s * 1000:.0f} ms CPU")
    for fmt in ("pdf", "png"):
        draw_s, page = best_s(lambda fmt=fmt: draw_report(data, fmt), args.repeat)
        assert isinstance(page, bytes)
        print(f"draw_report {fmt}: {draw_s * 1000:.0f} ms CPU, {len(page) / 1024:.0f} KiB")
    dense = one_hz(data, truth)
    for fmt in ("pdf", "png"):
        draw_s, page = best_s(lambda fmt=fmt: draw_report(dense, fmt), args.repeat)
        assert isinstance(page, bytes)
        print(
            f"simple alternative, 1 Hz points, {fmt}: {draw_s * 1000:.0f} ms CPU, "
            f"{len(page) / 1024:.0f} KiB"
        )


if __name__ == "__main__":
    main()
