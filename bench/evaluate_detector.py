"""The nightly oximetry figures (alerts/odi.py, alerts/nightly.py) on the real recordings.

    .venv/bin/pip install -e '.[bench]'      # wfdb, for the MIMIC numerics
    .venv/bin/python bench/evaluate_detector.py [--data ../shared/data/clinical]

1. hypoxia_fio2_ubicomp/100001.csv (one subject, induced hypoxaemia, 1 Hz, 4 clinical oximeters):
   per oximeter column, desaturation events (with desat_max_length 120 s, pobm's default 90 s,
   and no maximum), ODI3, CT90 (<=, over valid samples), nadir and seconds at it.
2. mimic2_numerics_wfdb/ (ICU minute numerics with real artefacts): minutes of SpO2 = 0 (probe
   off) and of values below 50, S6 summaries per night (22:00-07:00, local time as recorded;
   minute values repeated to 1 Hz, so ODI here only sees dips of a minute or more), and the same
   figures if the probe-off zeros were taken as SpO2 values, to show what the range gate prevents.
3. The time the desaturation scan takes on a synthetic 8-h night.
Prints figures only; asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from alerts.daily import aggregate_nights, local_windows  # noqa: E402
from alerts.nightly import summarise_night  # noqa: E402
from alerts.odi import (  # noqa: E402
    ct_percent,
    detect_desaturations,
    longest_run_below_s,
    nadir,
    preprocess,
    seconds_below,
)
from alerts.replay import replay  # noqa: E402
from alerts.rules import Profile, Tier  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "clinical"
UBICOMP_COLUMNS = ("SpO2 1", "SpO2 2", "SpO2 3", "SpO2 4", "SpO2 5")
MIMIC_RECORDS = ("s00001-2896-10-10-00-31n", "s25047-2704-05-04-10-44n")
SECONDS_PER_MINUTE = 60


def read_ubicomp(path: Path) -> dict[str, np.ndarray]:
    """The SpO2 columns of the 1 Hz CSV; rows without a value (the final text row) are skipped."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    rows = [row for row in rows if (row.get("SpO2 1") or "").strip()]
    return {name: np.array([float(row[name]) for row in rows]) for name in UBICOMP_COLUMNS}


def report_ubicomp(path: Path) -> None:
    columns = read_ubicomp(path)
    n = len(columns[UBICOMP_COLUMNS[0]])
    print(f"== {path.name}: {n} s at 1 Hz ({n / 60:.1f} min)")
    print(
        "column  valid_s  events(120 s / 90 s / no max)  ODI3/h  CT90 %  nadir % (s)  "
        "<85 % s  longest candidate"
    )
    for name, raw in columns.items():
        spo2 = preprocess(raw)
        valid_s = int(np.count_nonzero(~np.isnan(spo2)))
        if valid_s == 0:
            print(f"{name:7} {0:7}  no valid samples (all {raw[0]:g}: an unfilled channel)")
            continue
        events = detect_desaturations(spo2)
        pobm_90 = detect_desaturations(spo2, max_length_s=90)
        unbounded = detect_desaturations(spo2, max_length_s=10**9)
        longest = max(unbounded, key=lambda e: e.length_s, default=None)
        lowest, at_lowest_s = nadir(spo2)
        candidate = (
            f"{longest.length_s} s from {spo2[longest.begin]:g} to {spo2[longest.nadir]:g} %"
            if longest
            else "-"
        )
        print(
            f"{name:7} {valid_s:7}  {len(events):4} / {len(pobm_90):2} / {len(unbounded):2}"
            f"{'':18}{len(events) * 3600 / valid_s:6.1f}  {ct_percent(spo2):6.1f}  "
            f"{lowest:5g} ({at_lowest_s:3})  {seconds_below(spo2, 85):7}  {candidate}"
        )
    print(
        "Every oximeter sees one relative drop that starts with the staircase and only ends at "
        "the fast recovery, 12-14 min later: far over the 120 s maximum, so it is not an event.\n"
    )


def read_mimic(directory: Path, record: str) -> tuple[dt.datetime, dict[str, np.ndarray]]:
    import wfdb  # noqa: PLC0415  (bench-only dependency)

    rec = wfdb.rdrecord(str(directory / record))
    start = dt.datetime.combine(rec.base_date, rec.base_time, tzinfo=dt.UTC)
    return start, {name: rec.p_signal[:, k] for k, name in enumerate(rec.sig_name)}


def report_mimic(directory: Path) -> None:
    for record in MIMIC_RECORDS:
        start, signals = read_mimic(directory, record)
        spo2_min = signals["SpO2"]
        minutes = len(spo2_min)
        zero = int(np.count_nonzero(spo2_min == 0))
        low = spo2_min[(spo2_min > 0) & (spo2_min < 50)]
        print(f"== MIMIC-II {record}: {minutes} min from {start:%H:%M} (local time as recorded)")
        print(
            f"SpO2 = 0 (probe off): {zero} min; missing: {int(np.isnan(spo2_min).sum())} min; "
            f"0 < SpO2 < 50: {len(low)} min {sorted(set(low.tolist()))}"
        )
        spo2 = np.repeat(spo2_min, SECONDS_PER_MINUTE)
        hr = np.repeat(signals["HR"], SECONDS_PER_MINUTE)
        start_s = int(start.timestamp())
        windows = local_windows(start_s, len(spo2), 0, 22, 7)
        for night, lo, hi in windows:
            report_night(f"night of {night}", spo2[lo:hi])
        if not windows:
            report_night("whole record (no 22:00-07:00 data)", spo2)
        gated = preprocess(spo2)
        events = detect_desaturations(gated)
        overlaps = sum(bool(np.any(spo2[e.begin - 1 : e.end + 1] == 0)) for e in events)
        print(
            f"whole record: {len(events)} desaturation events, {overlaps} of them touching a "
            "probe-off second"
        )
        hr_gated = np.where((hr >= 25) & (hr <= 250), hr, np.nan)
        for value in aggregate_nights(start_s, hr_gated, 0, "mean"):
            print(
                f"night of {value.day}: resting HR 00-07 = {value.value:.1f} bpm "
                f"over {value.valid_s / 3600:.1f} h (H3 input)"
            )
        print()


def report_night(label: str, spo2: np.ndarray) -> None:
    summary = summarise_night(spo2)
    print(
        f"{label}: {len(spo2) / 3600:.1f} h recorded, {summary.valid_hours:.1f} h valid, "
        f"{summary.desaturations} events, ODI3 {summary.odi3_per_hour:.1f}/h, "
        f"CT90 {summary.ct90_percent:.1f} %, nadir {summary.nadir_percent:g} % "
        f"({summary.nadir_s} s), S6 {summary.status.value}"
        + (f" {summary.priority.value}" if summary.priority else "")
        + (f": {'; '.join(summary.reasons)}" if summary.reasons else "")
    )
    kept = np.where(np.isnan(spo2), np.nan, np.round(spo2))
    print(
        f"   if probe-off zeros were SpO2 values: CT90 {ct_percent(kept):.1f} %, "
        f"nadir {nadir(kept)[0]:g} %, longest run < 85 % {longest_run_below_s(kept, 85)} s"
    )


def time_scan() -> None:
    rng = np.random.default_rng(1)
    night = 96 + np.cumsum(rng.integers(-1, 2, size=8 * 3600)).clip(-10, 3).astype(float)
    spo2 = preprocess(night)
    runs = 20
    begin = time.perf_counter()
    for _ in range(runs):
        events = detect_desaturations(spo2)
    scan_ms = (time.perf_counter() - begin) / runs * 1000
    begin = time.perf_counter()
    for _ in range(runs):
        preprocess(night)
    prep_ms = (time.perf_counter() - begin) / runs * 1000
    print(
        f"== 8-h synthetic night (28,800 samples, {len(events)} events): desaturation scan "
        f"{scan_ms:.1f} ms, preprocessing (range gate + 9 s median) {prep_ms:.1f} ms"
    )


def read_ubicomp_pairs(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(SpO2, PI) per oximeter of the 1 Hz CSV; missing cells and the text row are NaN."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if (row.get("SpO2 1") or "").strip()]

    def column(name: str) -> np.ndarray:
        return np.array([float(row[name]) if row[name].strip() else np.nan for row in rows])

    return {f"SpO2 {i}": (column(f"SpO2 {i}"), column(f"PI {i}")) for i in (1, 2, 4, 5)}


def report_alert_latency(path: Path) -> None:
    """Seconds from the first reading at or below the S2 limit (92 %; red: 93 %) to the S2
    alert, and from the first reading <= 88 % to S1, per tier."""
    print(f"== alert latency on {path.name} (replay of the live rules, 1 Hz)")
    for name, (spo2, pi) in read_ubicomp_pairs(path).items():
        samples = []
        for second, (value, perfusion) in enumerate(zip(spo2, pi, strict=True)):
            usable = None if np.isnan(value) or value == 0 else float(value)
            samples.append((float(second), "spo2_percent", usable, 0))
            if not np.isnan(perfusion):
                samples.append((float(second), "pi_percent", float(perfusion), 0))
        first_88 = int(np.flatnonzero(spo2 <= 88)[0])
        for tier in Tier:
            s2_limit = 93 if tier is Tier.RED else 92
            first_92 = int(np.flatnonzero(spo2 <= s2_limit)[0])
            onsets: dict[str, float] = {}
            for event in replay(samples, tier, Profile.DEFAULT):
                onsets.setdefault(event.rule.value, event.at_s)
            s2 = onsets.get("S2")
            s1 = onsets.get("S1")
            print(
                f"  {name} {tier.value:<6}: first <= {s2_limit} % at {first_92} s, S2 at "
                f"{'-' if s2 is None else f'{s2:.0f} s (+{s2 - first_92:.0f} s)'}; "
                f"first <= 88 % at {first_88} s, S1 at "
                f"{'-' if s1 is None else f'{s1:.0f} s (+{s1 - first_88:.0f} s)'}; "
                f"rules raised: {', '.join(sorted(onsets)) or 'none'}"
            )


def report_mimic_alerts(directory: Path) -> None:
    """The live rules replayed on the MIMIC numerics: probe-off (SpO2 = 0) must not become
    hypoxaemia."""
    print(f"== live rules on {directory.name} (minute values held for 60 s)")
    for record in MIMIC_RECORDS:
        _, signals = read_mimic(directory, record)
        spo2 = np.repeat(signals["SpO2"], SECONDS_PER_MINUTE)
        samples = [
            (float(i), "spo2_percent", None if np.isnan(v) or v <= 0 else float(v), 0)
            for i, v in enumerate(spo2)
        ]
        timeline = replay(samples, Tier.RED, Profile.DEFAULT)
        raised = [e for e in timeline if e.event.value == "raised"]
        during_zero = [e for e in raised if spo2[int(e.at_s)] <= 0 and e.rule.value != "Q1"]
        print(
            f"  {record}: {int((spo2 <= 0).sum() // 60)} min SpO2 = 0; raised "
            f"{', '.join(f'{e.rule.value}@{e.at_s / 60:.0f}min' for e in raised) or 'nothing'}; "
            f"hypoxaemia alerts raised inside probe-off: {len(during_zero)}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the clinical data folder")
    args = parser.parse_args()
    report_ubicomp(args.data / "hypoxia_fio2_ubicomp" / "100001.csv")
    report_alert_latency(args.data / "hypoxia_fio2_ubicomp" / "100001.csv")
    try:
        import wfdb  # noqa: F401, PLC0415
    except ImportError:
        print("MIMIC numerics skipped: install the bench extra (pip install -e '.[bench]')")
    else:
        report_mimic(args.data / "mimic2_numerics_wfdb")
        report_mimic_alerts(args.data / "mimic2_numerics_wfdb")
    time_scan()


if __name__ == "__main__":
    main()
