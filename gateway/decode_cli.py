"""`pulsegate decode` and `pulsegate convert`: device bytes and stored recordings on the command
line, for checking a new device by hand and for importing nights into the generic CSV."""

from __future__ import annotations

import dataclasses
import io
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import click

from devices.protocols.catalog import (
    UnknownProtocolError,
    all_protocols,
    all_recording_formats,
    get_protocol,
)
from devices.protocols.reading import DecodeError, Metric, Reading
from devices.protocols.spec import Recording, StreamDecoder
from devices.recording_csv import (
    COLUMN_METRICS,
    HEADER_LINE,
    GenericCsvError,
    GenericSample,
    format_utc,
    looks_like_generic_csv,
    read_generic_samples,
    samples_of,
    write_generic_csv,
)
from devices.recording_csv import (
    FORMAT_NAME as CSV_FORMAT,
)
from gateway.cli_errors import EXIT_FAILURE, EXIT_USAGE, fail

FILE_CHUNK_BYTES = 4096
SECONDS_PER_HOUR = 3600
MAX_UTC_OFFSET_H = 14  # Line Islands, UTC+14; the westernmost zone is UTC-12
HEX_SEPARATORS = str.maketrans("", "", " \t\r\n:")


@click.command()
@click.argument("protocol", required=False)
@click.argument("hex_args", metavar="[HEX]...", nargs=-1)
@click.option("--list", "list_catalog", is_flag=True, help="List the protocols and exit.")
@click.option(
    "--file",
    "capture_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Feed this binary capture instead of HEX arguments.",
)
@click.option("--stats", "show_stats", is_flag=True, help="Print decoder counters on stderr.")
def decode(
    protocol: str | None,
    hex_args: tuple[str, ...],
    list_catalog: bool,
    capture_path: Path | None,
    show_stats: bool,
) -> None:
    """Decode device bytes with PROTOCOL: one JSON reading per line.

    Each HEX argument (spaces and colons allowed: "87 32 05 48 62") goes to the same decoder in
    order, so a frame may be split over arguments. A malformed frame is reported on stderr and
    decoding goes on; the exit code is then 1.
    """
    if list_catalog:
        if protocol is not None or capture_path is not None:
            fail("--list takes no PROTOCOL, HEX or --file", EXIT_USAGE)
        _echo_catalog()
        return
    if protocol is None:
        fail("give a PROTOCOL (see `pulsegate decode --list`)", EXIT_USAGE)
    if hex_args and capture_path is not None:
        fail("give HEX arguments or --file, not both", EXIT_USAGE)
    if not hex_args and capture_path is None:
        fail("give HEX arguments or --file PATH to decode", EXIT_USAGE)
    try:
        decoder = get_protocol(protocol).new_decoder()
    except UnknownProtocolError as exc:
        fail(str(exc), EXIT_USAGE)
    if capture_path is None:
        failures = _feed_all(
            decoder, protocol, [_parse_hex(i, text) for i, text in enumerate(hex_args, 1)]
        )
    else:
        failures = _feed_all(decoder, protocol, _file_chunks(capture_path))
    if show_stats:
        click.echo(json.dumps(dataclasses.asdict(decoder.stats)), err=True)
    if failures:
        sys.exit(EXIT_FAILURE)


def _parse_hex(index: int, text: str) -> bytes:
    """The bytes of HEX argument `index` (1-based); exits with a usage error if not hex."""
    try:
        return bytes.fromhex(text.translate(HEX_SEPARATORS))
    except ValueError:
        fail(f"argument {index} is not hex: {text!r}", EXIT_USAGE)


def _file_chunks(path: Path) -> Iterator[bytes]:
    """The file at `path` in chunks of FILE_CHUNK_BYTES; exits with a usage error if unreadable."""
    try:
        with path.open("rb") as capture:
            while chunk := capture.read(FILE_CHUNK_BYTES):
                yield chunk
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}", EXIT_USAGE)


def _feed_all(decoder: StreamDecoder, protocol: str, chunks: Iterable[bytes]) -> int:
    """Feed every chunk, print each reading as JSON; return how many chunks were malformed."""
    failures = 0
    for chunk in chunks:
        try:
            readings = decoder.feed(chunk)
        except DecodeError as exc:
            click.echo(f"error: {exc}", err=True)
            failures += 1
            continue
        for reading in readings:
            click.echo(json.dumps(reading_json(protocol, reading)))
    return failures


def reading_json(protocol: str, reading: Reading) -> dict[str, Any]:
    """A reading as the JSON object `pulsegate decode` prints."""
    return {
        "protocol": protocol,
        "metric": str(reading.metric),
        "value": _json_number(reading.value),
        "quality": [flag.name for flag in reading.quality],
        "device_time": None if reading.device_time_s is None else format_utc(reading.device_time_s),
        "site": None if reading.site is None else str(reading.site),
    }


def _json_number(value: float | None) -> float | int | None:
    """98.0 as 98; other values rounded to hide binary noise."""
    if value is None:
        return None
    return int(value) if value.is_integer() else round(value, 6)


def _echo_catalog() -> None:
    """The protocol table, then the recording formats `convert` reads."""
    rows = [
        (
            spec.name,
            ",".join(sorted(spec.transports)),
            ",".join(metric for metric in Metric if metric in spec.metrics),
            spec.title,
        )
        for spec in all_protocols().values()
    ]
    _echo_table(("protocol", "transports", "metrics", "title"), rows)
    click.echo("")
    formats = [(f.name, f.title) for f in all_recording_formats().values()]
    formats.append((CSV_FORMAT, f"generic CSV ({HEADER_LINE}), as convert writes it"))
    _echo_table(("recording format", "title"), formats)


def _echo_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Left-aligned columns, two spaces apart."""
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


FORMAT_CHOICES = ["auto", *all_recording_formats(), CSV_FORMAT]

# The options of every command that reads a recording FILE.
format_option = click.option(
    "--format",
    "format_name",
    type=click.Choice(FORMAT_CHOICES),
    default="auto",
    show_default=True,
    help="Format of FILE; auto recognises it by its content.",
)
utc_offset_option = click.option(
    "--utc-offset",
    "utc_offset_h",
    type=click.FloatRange(-MAX_UTC_OFFSET_H, MAX_UTC_OFFSET_H),
    default=0.0,
    show_default=True,
    help="Hours the device clock is ahead of UTC (China: 8); device files only.",
)


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@format_option
@click.option(
    "-o",
    "--output",
    "output_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the CSV here (default: stdout).",
)
@utc_offset_option
def convert(file: Path, format_name: str, output_path: Path | None, utc_offset_h: float) -> None:
    """Convert a device recording FILE into the generic CSV (timestamp,spo2,pulse,pi,temp_c).

    Device clocks keep local time: give their offset with --utc-offset so the CSV is in UTC.
    A one-line summary goes to stderr.
    """
    loaded = load_samples(file, format_name, utc_offset_h)
    _write_output(output_path, loaded.samples)
    click.echo(loaded.summary(), err=True)


@dataclasses.dataclass(frozen=True, slots=True)
class LoadedRecording:
    """A recording file read into generic samples (UTC)."""

    format_name: str
    model: str
    start_time_s: float | None
    samples: list[GenericSample]

    def summary(self) -> str:
        return summary_line(self.format_name, self.model, self.start_time_s, self.samples)


def load_samples(file: Path, format_name: str, utc_offset_h: float) -> LoadedRecording:
    """Read a recording FILE (any known format, or `auto`) into UTC samples; exits with a
    usage error on anything unreadable."""
    data = _read_input(file)
    if format_name == "auto":
        format_name = _detect_format(file, data)
    if format_name == CSV_FORMAT:
        if utc_offset_h:
            fail("--utc-offset is for device files; CSV timestamps are UTC already", EXIT_USAGE)
        samples = _read_csv(file, data)
        return LoadedRecording(format_name, "", samples[0].time_s if samples else None, samples)
    recording = _read_recording(file, format_name, data)
    recording = shift_recording(recording, -utc_offset_h * SECONDS_PER_HOUR)
    return LoadedRecording(
        format_name, recording.model, recording.start_time_s, samples_of(recording.readings)
    )


def _read_input(path: Path) -> bytes:
    """The bytes of `path`; exits with a usage error when it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}", EXIT_USAGE)


def _detect_format(path: Path, data: bytes) -> str:
    """The one format whose `looks_like` accepts `data`; exits with a usage error otherwise."""
    matches = [name for name, fmt in all_recording_formats().items() if fmt.looks_like(data)]
    if looks_like_generic_csv(data):
        matches.append(CSV_FORMAT)
    known = ", ".join(FORMAT_CHOICES[1:])
    if not matches:
        fail(f"{path} is not a recording format pulsegate knows ({known})", EXIT_USAGE)
    if len(matches) > 1:
        fail(f"{path} looks like several formats ({', '.join(matches)}); give --format", EXIT_USAGE)
    return matches[0]


def _read_recording(path: Path, format_name: str, data: bytes) -> Recording:
    """The recording in `data`; exits with a usage error when the file is malformed."""
    try:
        return all_recording_formats()[format_name].read(data)
    except DecodeError as exc:
        fail(f"{path} is not a valid {format_name} file: {exc}", EXIT_USAGE)


def _read_csv(path: Path, data: bytes) -> list[GenericSample]:
    """The rows of a generic CSV; exits with a usage error naming the bad line."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        fail(f"{path} is not UTF-8 text (byte {exc.start})", EXIT_USAGE)
    try:
        return read_generic_samples(io.StringIO(text, newline=""))
    except GenericCsvError as exc:
        fail(f"{path} line {exc.line_number}: {exc.reason}", EXIT_USAGE)


def shift_recording(recording: Recording, offset_s: float) -> Recording:
    """`recording` with its start and every device time moved by `offset_s` seconds."""
    if not offset_s:
        return recording

    def moved(time_s: float | None) -> float | None:
        return None if time_s is None else time_s + offset_s

    readings = tuple(
        dataclasses.replace(r, device_time_s=moved(r.device_time_s)) for r in recording.readings
    )
    return dataclasses.replace(
        recording, start_time_s=moved(recording.start_time_s), readings=readings
    )


def _write_output(path: Path | None, samples: list[GenericSample]) -> None:
    """The CSV to `path`, or to stdout; exits with a usage error when `path` is not writable."""
    if path is None:
        buffer = io.StringIO()
        write_generic_csv(samples, buffer)
        click.echo(buffer.getvalue(), nl=False)
        return
    try:
        with path.open("w", encoding="utf-8", newline="") as out:
            write_generic_csv(samples, out)
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror or exc}", EXIT_USAGE)


def summary_line(
    format_name: str, model: str, start_time_s: float | None, samples: Sequence[GenericSample]
) -> str:
    """One line: format, model, start, sample count and missing values per measured column."""
    start = "-" if start_time_s is None else format_utc(start_time_s)
    missing = []
    for index, column in enumerate(COLUMN_METRICS):
        values = [sample.values()[index] for sample in samples]
        if any(value is not None for value in values):
            missing.append(f"{column} {values.count(None)}")
    measured = f"missing {', '.join(missing)}" if missing else "no values"
    return f"{format_name}: model {model or '-'}, start {start}, {len(samples)} samples, {measured}"
