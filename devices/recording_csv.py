"""The generic recording CSV: the interchange format `pulsegate convert` writes and the detector's
replay reads.

One header line, exactly `timestamp,spo2,pulse,pi,temp_c`, then one row per sample time:
  timestamp  ISO 8601 with its UTC offset, written in UTC with `Z` (`2011-10-17T20:00:25Z`;
             fractions of a second only when there are any)
  spo2       SpO2, %          pulse   pulse rate, bpm
  pi         perfusion index, %      temp_c  body temperature, degrees C
An empty cell is a missing value. Rows are in increasing time order. Quality flags, battery and
beat-to-beat values are not carried.
"""

from __future__ import annotations

import csv
import itertools
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import TextIO

from devices.protocols.reading import PLAUSIBLE_RANGE, Metric, Reading, is_plausible
from devices.protocols.spec import Recording

FORMAT_NAME = "csv"
HEADER = ("timestamp", "spo2", "pulse", "pi", "temp_c")
HEADER_LINE = ",".join(HEADER)
# CSV column -> the metric it holds, in header order after the timestamp.
COLUMN_METRICS = {
    "spo2": Metric.SPO2,
    "pulse": Metric.PULSE,
    "pi": Metric.PI,
    "temp_c": Metric.TEMP,
}
UTF8_BOM = b"\xef\xbb\xbf"  # spreadsheet programs put it at the start of exported CSV
NUMBER_DECIMALS = 6  # enough for every metric; hides binary noise such as 36.699999999999996


@dataclass(frozen=True, slots=True)
class GenericSample:
    """One CSV row: the values measured at `time_s` (UTC epoch seconds); None = missing."""

    time_s: float
    spo2_percent: float | None = None
    pulse_bpm: float | None = None
    pi_percent: float | None = None
    temp_c: float | None = None

    def values(self) -> tuple[float | None, ...]:
        """The four values in CSV column order."""
        return (self.spo2_percent, self.pulse_bpm, self.pi_percent, self.temp_c)


_SAMPLE_FIELDS = tuple(f.name for f in fields(GenericSample))[1:]
_METRIC_FIELDS = dict(zip(COLUMN_METRICS.values(), _SAMPLE_FIELDS, strict=True))


class GenericCsvError(ValueError):
    """A generic CSV that does not follow the format, at `line_number` (1 = the header)."""

    def __init__(self, line_number: int, reason: str) -> None:
        self.line_number = line_number
        self.reason = reason
        super().__init__(f"line {line_number}: {reason}")


def format_utc(time_s: float) -> str:
    """`time_s` (UTC epoch seconds) as ISO 8601 UTC with `Z`; a fraction only when non-zero."""
    stamp = datetime.fromtimestamp(time_s, UTC).isoformat(timespec="microseconds")
    whole, fraction = stamp.removesuffix("+00:00").split(".")
    fraction = fraction.rstrip("0")
    return f"{whole}.{fraction}Z" if fraction else f"{whole}Z"


def format_number(value: float) -> str:
    """`value` in plain decimal notation without trailing zeros (98, 6.7, 36.55)."""
    text = f"{round(value, NUMBER_DECIMALS) + 0.0:.{NUMBER_DECIMALS}f}"  # + 0.0 turns -0.0 to 0.0
    text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def looks_like_generic_csv(data: bytes) -> bool:
    """True when `data` starts with the generic CSV header (a UTF-8 byte order mark allowed)."""
    header = data.removeprefix(UTF8_BOM).split(b"\n", 1)[0].rstrip(b"\r")
    return header == HEADER_LINE.encode()


def samples_of(readings: Iterable[Reading]) -> list[GenericSample]:
    """One sample per distinct device time, in time order.

    Readings of other metrics are ignored; when a metric comes twice at the same time the last
    value wins, but a missing value never hides a present one. `ValueError` for a reading
    without a device time.
    """
    by_time: dict[float, dict[str, float | None]] = {}
    for reading in readings:
        if reading.device_time_s is None:
            raise ValueError(f"{reading} has no device time: it cannot be placed in a CSV row")
        field_name = _METRIC_FIELDS.get(reading.metric)
        if field_name is None:
            continue
        row = by_time.setdefault(reading.device_time_s, {})
        if reading.value is not None or row.get(field_name) is None:
            row[field_name] = reading.value
    return [GenericSample(time_s, **row) for time_s, row in sorted(by_time.items())]


def write_generic_csv(
    recording_or_rows: Recording | Iterable[GenericSample], stream: TextIO
) -> int:
    """Write the header and one row per sample to `stream`; return the number of rows."""
    if isinstance(recording_or_rows, Recording):
        rows: Iterable[GenericSample] = samples_of(recording_or_rows.readings)
    else:
        rows = recording_or_rows
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(HEADER)
    count = 0
    for row in rows:
        cells = ["" if value is None else format_number(value) for value in row.values()]
        writer.writerow([format_utc(row.time_s), *cells])
        count += 1
    return count


def read_generic_csv(stream: TextIO) -> Recording:
    """The recording in a generic CSV (format "csv"); `GenericCsvError` names the bad line.

    Every column with at least one value gives a reading per row (None where the cell is
    empty); a column that is empty throughout gives none. `interval_s` is the median gap
    between rows (0 with fewer than two rows).
    """
    samples = read_generic_samples(stream)
    filled = [
        index
        for index in range(len(COLUMN_METRICS))
        if any(sample.values()[index] is not None for sample in samples)
    ]
    metrics = list(COLUMN_METRICS.values())
    readings = tuple(
        Reading(metrics[index], sample.values()[index], device_time_s=sample.time_s)
        for sample in samples
        for index in filled
    )
    gaps_s = [b.time_s - a.time_s for a, b in itertools.pairwise(samples)]
    return Recording(
        format=FORMAT_NAME,
        start_time_s=samples[0].time_s if samples else None,
        interval_s=statistics.median(gaps_s) if gaps_s else 0.0,
        readings=readings,
    )


def read_generic_samples(stream: TextIO) -> list[GenericSample]:
    """The rows of a generic CSV, checked; `GenericCsvError` names the first bad line."""
    reader = csv.reader(stream)
    try:
        header = next(reader, None)
        if header is None or tuple(header) != HEADER:
            raise GenericCsvError(1, f"expected the header {HEADER_LINE!r}, got {header!r}")
        samples: list[GenericSample] = []
        for row in reader:
            if not row:
                continue  # blank line
            sample = _parse_row(reader.line_num, row)
            if samples and sample.time_s <= samples[-1].time_s:
                raise GenericCsvError(reader.line_num, "timestamps must increase row by row")
            samples.append(sample)
    except csv.Error as exc:
        raise GenericCsvError(reader.line_num, f"not CSV: {exc}") from exc
    return samples


def _parse_row(line_number: int, row: list[str]) -> GenericSample:
    """One data row as a sample; `GenericCsvError` when a field is wrong."""
    if len(row) != len(HEADER):
        raise GenericCsvError(line_number, f"expected {len(HEADER)} fields, got {len(row)}")
    time_s = _parse_time(line_number, row[0])
    values = [
        _parse_value(line_number, column, metric, cell)
        for (column, metric), cell in zip(COLUMN_METRICS.items(), row[1:], strict=True)
    ]
    return GenericSample(time_s, *values)


def _parse_time(line_number: int, text: str) -> float:
    """An ISO 8601 timestamp with a UTC offset as epoch seconds."""
    try:
        stamp = datetime.fromisoformat(text.strip())
    except ValueError:
        raise GenericCsvError(line_number, f"timestamp {text!r} is not ISO 8601") from None
    if stamp.tzinfo is None:
        reason = f"timestamp {text!r} has no UTC offset; write it in UTC with Z"
        raise GenericCsvError(line_number, reason)
    return stamp.timestamp()


def _parse_value(line_number: int, column: str, metric: Metric, text: str) -> float | None:
    """A cell as a plausible number of `metric`, or None when empty."""
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise GenericCsvError(line_number, f"{column} {text!r} is not a number") from None
    if not is_plausible(metric, value):  # also rejects nan and inf
        low, high = PLAUSIBLE_RANGE[metric]
        reason = f"{column} {text} is outside the possible range {low:g}-{high:g}"
        raise GenericCsvError(line_number, reason)
    return value
