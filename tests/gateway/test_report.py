"""The daily report over a simulated day written into a real store (tests/gateway/report_day.py):
the figures equal what the constructed day says, the page renders as PDF and PNG with its
Chinese (or English) text, and a day without data or an unknown patient are handled."""

from __future__ import annotations

import datetime as dt
import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pypdf
import pytest
from PIL import Image

from alerts.rules import Priority, Profile, Tier
from devices.protocols.reading import Quality
from gateway import report_render, retention
from gateway.report_data import ReportData, ReportError, read_report_data
from gateway.report_render import A4_PORTRAIT_IN, PNG_DPI, draw_report, render_report
from gateway.store import Patient, Store
from tests.gateway import report_day
from tests.gateway.report_day import DAY, PATIENT, UTC_OFFSET_S, DayTruth

HOUR_S = 3600


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DayTruth]:
    """The simulated day in a database, built once per module."""
    path = tmp_path_factory.mktemp("report") / "pulsegate.db"
    store = Store.open(path, "gw-demo")
    try:
        truth = report_day.write_day(store)
    finally:
        store.close()
    return path, truth


@pytest.fixture
def store(built: tuple[Path, DayTruth], tmp_path: Path) -> Iterator[Store]:
    path = tmp_path / "pulsegate.db"
    shutil.copy(built[0], path)
    opened = Store.open(path, "gw-demo")
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def data(built: tuple[Path, DayTruth]) -> ReportData:
    store = Store.open(built[0], "gw-demo")
    try:
        return read_report_data(store, PATIENT, DAY, UTC_OFFSET_S, "village-1")
    finally:
        store.close()


@pytest.fixture(scope="module")
def truth(built: tuple[Path, DayTruth]) -> DayTruth:
    return built[1]


def test_time_below_each_level_is_the_resting_seconds_strictly_below_it(
    data: ReportData, truth: DayTruth
) -> None:
    resting = np.where(truth.motion, np.nan, truth.spo2_percent)
    assert [b.level_percent for b in data.figures.below] == [94.0, 92.0, 88.0]
    for below in data.figures.below:
        expected_s = int(np.count_nonzero(resting < below.level_percent))
        assert below.seconds == expected_s
        share = 100 * expected_s / np.count_nonzero(~np.isnan(resting))
        assert below.share_percent == pytest.approx(share)
    # the desaturation: 86-91 % for part of its fall and rise and all of its 6-minute hold
    assert data.figures.below[1].seconds > report_day.DESAT_HOLD_S


def test_nadir_is_the_lowest_value_at_its_first_second(data: ReportData, truth: DayTruth) -> None:
    assert data.figures.nadir_percent == report_day.NADIR_PERCENT
    first_s = truth.start_s + int(np.flatnonzero(truth.spo2_percent == 86.0)[0])
    assert data.figures.nadir_at_s == first_s


def test_coverage_counts_every_valid_second_and_monitored_time_only_resting_ones(
    data: ReportData, truth: DayTruth
) -> None:
    valid = ~np.isnan(truth.spo2_percent)
    assert data.figures.coverage_percent == pytest.approx(100 * valid.sum() / 86_400)
    assert data.figures.monitored_s == int(np.count_nonzero(valid & ~truth.motion))
    # worn 11 h, minus the 20 minutes with the finger out
    assert data.figures.coverage_percent == pytest.approx(100 * (11 * 60 - 20) / 1440)


def test_each_brief_dip_is_one_desaturation_and_odi3_is_per_monitored_hour(
    data: ReportData,
) -> None:
    assert data.figures.desaturations == 12
    monitored_h = data.figures.monitored_s / HOUR_S
    assert data.figures.odi3_per_hour == pytest.approx(12 / monitored_h)


def test_highest_temperature_and_its_time(data: ReportData, truth: DayTruth) -> None:
    assert data.max_temperature is not None
    assert data.max_temperature.value == report_day.FEVER_PEAK_C
    assert data.max_temperature.at_s == truth.start_s + report_day.FEVER_PEAK_H * HOUR_S
    assert len(data.temperatures) == len(truth.temperatures)


def test_gaps_longest_first_with_their_reasons(data: ReportData, truth: DayTruth) -> None:
    unworn, probe_off = data.gaps[:2]
    assert (unworn.start_s, unworn.length_s) == (truth.start_s + 7 * HOUR_S, 13 * HOUR_S)
    assert not unworn.received
    assert (probe_off.start_s, probe_off.length_s) == (truth.start_s + 2 * HOUR_S, 20 * 60)
    assert probe_off.received and probe_off.flags & Quality.FINGER_OUT
    assert data.gap_total_s == 13 * HOUR_S + 20 * 60


def test_the_days_alerts_with_their_acknowledgement(data: ReportData, truth: DayTruth) -> None:
    by_rule = {alert.rule: alert for alert in data.alerts}
    assert {"S1", "S2", "Q1", "T1", "T2"} <= set(by_rule)
    s1 = by_rule["S1"]
    assert s1.priority is Priority.HIGH
    assert s1.acked_by == "dr-wang"
    assert s1.acked_s == truth.start_s + 3.5 * HOUR_S
    assert s1.cleared_s is not None and s1.cleared_s > s1.raised_s
    desat_start_s = truth.start_s + report_day.DESAT_START_H * HOUR_S
    assert desat_start_s < s1.raised_s < desat_start_s + 600
    assert [a.raised_s for a in data.alerts] == sorted(a.raised_s for a in data.alerts)


def test_an_alert_of_another_day_is_not_listed(store: Store) -> None:
    next_day = read_report_data(store, PATIENT, DAY + dt.timedelta(days=2), UTC_OFFSET_S)
    listed = {alert.rule for alert in next_day.alerts}
    assert "S1" not in listed  # closed on DAY
    assert {"T1", "T2"} <= listed  # still open, so still live that day


def _pdf_text(page: bytes) -> tuple[int, str, tuple[float, float]]:
    reader = pypdf.PdfReader(io.BytesIO(page))
    box = reader.pages[0].mediabox
    return len(reader.pages), reader.pages[0].extract_text(), (float(box.width), float(box.height))


def test_the_pdf_is_one_a4_page_with_searchable_chinese_text(store: Store) -> None:
    page = render_report(store, PATIENT, DAY, "pdf", utc_offset_s=UTC_OFFSET_S)
    pages, text, size = _pdf_text(page)
    assert pages == 1
    assert size == pytest.approx((A4_PORTRAIT_IN[0] * 72, A4_PORTRAIT_IN[1] * 72), abs=1)
    for expected in (
        "每日血氧与体温报告",
        "血氧危急",
        "低于 92% 的时间",
        "dr-wang",
        "手指未在探头内",
    ):
        assert expected in text
    assert "38.9 °C" in text


def test_the_english_pdf_has_the_english_title(store: Store) -> None:
    page = render_report(store, PATIENT, DAY, "pdf", lang="en", utc_offset_s=UTC_OFFSET_S)
    text = _pdf_text(page)[1]
    assert "Daily oximetry and temperature report" in text
    assert "critical SpO2" in text
    assert "每日" not in text


def test_the_png_is_an_a4_page_with_the_tier_colour(store: Store) -> None:
    page = render_report(store, PATIENT, DAY, "png", utc_offset_s=UTC_OFFSET_S)
    image = Image.open(io.BytesIO(page)).convert("RGB")
    assert image.size == (int(A4_PORTRAIT_IN[0] * PNG_DPI), int(A4_PORTRAIT_IN[1] * PNG_DPI))
    pixels = np.asarray(image)
    red_tier = np.all(pixels == (0xD6, 0x27, 0x28), axis=2)
    header = red_tier[: image.size[1] // 10]
    assert header.sum() > 500  # the tier badge in the header
    assert np.count_nonzero(np.any(pixels < 128, axis=2)) > 10_000  # text and charts drawn


def test_a_day_without_data_still_renders_and_says_so(store: Store) -> None:
    store.add_patient(Patient("quiet", Tier.GREEN, Profile.COPD), 0.0)
    data = read_report_data(store, "quiet", DAY, UTC_OFFSET_S)
    assert not data.has_data
    assert data.alerts == () and data.max_temperature is None
    assert data.gaps[0].length_s == 86_400
    text = _pdf_text(draw_report(data, "pdf"))[1]
    assert "当日无数据" in text and "当日无警报" in text
    assert "慢阻肺目标 88-92%" in text  # the COPD profile's target


def test_the_display_name_kept_on_the_box_heads_the_page(store: Store) -> None:
    store.db.execute(
        "INSERT INTO patient_display_names (patient_id, display_name, updated_s) VALUES (?, ?, 0)",
        [PATIENT, "王秀英"],
    )
    data = read_report_data(store, PATIENT, DAY, UTC_OFFSET_S)
    assert data.display_name == "王秀英"
    assert "王秀英" in _pdf_text(draw_report(data, "pdf"))[1]


def test_an_unknown_patient_is_a_report_error(store: Store) -> None:
    with pytest.raises(ReportError, match="no patient 'nobody'"):
        render_report(store, "nobody", DAY, "pdf")


def test_an_unknown_language_or_format_is_a_report_error(store: Store, data: ReportData) -> None:
    with pytest.raises(ReportError, match="unsupported language"):
        draw_report(data, "pdf", "fr")
    with pytest.raises(ReportError, match="unknown report format"):
        render_report(store, PATIENT, DAY, "svg")  # type: ignore[arg-type]


def test_without_a_chinese_font_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, data: ReportData
) -> None:
    monkeypatch.setattr(report_render, "CJK_FAMILIES", ("No Such Font",))
    monkeypatch.setattr(report_render, "_CJK_FILE_HINTS", ())
    report_render.cjk_font_family.cache_clear()
    try:
        with pytest.raises(ReportError, match="apt-get install fonts-wqy-microhei"):
            draw_report(data, "png")
    finally:
        report_render.cjk_font_family.cache_clear()


def test_a_day_rolled_up_into_minute_summaries_still_reports(
    store: Store, data: ReportData, truth: DayTruth
) -> None:
    end_s = truth.start_s + 86_400
    while retention.roll_up_chunk(store, end_s, chunk_s=86_400):
        pass
    assert store.db.execute("SELECT count(*) FROM reading_samples").fetchone()[0] == 0
    summarised = read_report_data(store, PATIENT, DAY, UTC_OFFSET_S)
    # whole minutes worn, and the probe off for whole minutes: the same coverage
    assert summarised.figures.coverage_percent == pytest.approx(data.figures.coverage_percent)
    assert summarised.figures.nadir_percent == report_day.NADIR_PERCENT
    assert summarised.max_temperature == data.max_temperature
    assert summarised.alerts == data.alerts
    assert draw_report(summarised, "png").startswith(b"\x89PNG")
