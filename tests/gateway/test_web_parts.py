"""The status page's pure parts: language choice, PIN hashes, the wrong-PIN limiter, CSRF
checks, sparklines and hub charts, the [web] configuration, display names, and the
incremental series cache against a fresh read."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.rules import Profile, Tier
from gateway.config import ConfigError, parse_config
from gateway.display_names import clear_display_name, display_names, set_display_name
from gateway.store import Patient, ReadingRow, Store, StoreError
from gateway.web.guard import FailureLimiter, csrf_ok, same_origin
from gateway.web.hub_charts import band_chart
from gateway.web.lang import accept_language, choose_language
from gateway.web.local_data import SeriesCache
from gateway.web.secret_hash import HashFormatError, hash_secret, parse_hash, verify_secret
from gateway.web.sparkline import sparkline
from tests.gateway.web_fixtures import NOW_S, message


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
        ("fr-FR, en;q=0.5, zh;q=0.7", "zh"),  # the highest q among supported ones
        ("zh;q=0.5, en;q=0.5", "zh"),  # a tie keeps the header's order
        ("de, fr", None),
        ("*", None),
        ("en;q=0, zh-TW", "zh"),  # q=0 means "not this"
        ("en;q=abc, zh;q=0.1", "zh"),  # a malformed q counts as 0
        ("zh_Hans_CN", "zh"),
    ],
)
def test_accept_language_picks_the_best_supported_language(
    header: str | None, expected: str | None
) -> None:
    assert accept_language(header) == expected


@pytest.mark.parametrize(
    ("picked", "configured", "header", "expected"),
    [
        ("en", "zh", "zh", "en"),  # the visitor's pick first
        (None, "en", "zh", "en"),  # then the configuration
        (None, None, "en-US", "en"),  # then the browser
        (None, None, "fr", "zh"),  # then Chinese
        ("xx", None, "en", "en"),  # an unsupported pick is ignored
    ],
)
def test_choose_language_precedence(
    picked: str | None, configured: str | None, header: str, expected: str
) -> None:
    assert choose_language(picked, configured, header) == expected


@settings(max_examples=20, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_a_secret_verifies_against_its_hash_and_not_another(secret: str) -> None:
    encoded = hash_secret(secret, n=2**4)
    assert verify_secret(secret, encoded)
    assert not verify_secret(secret + "x", encoded)


def test_hashes_are_salted_and_encoded_with_their_parameters() -> None:
    first, second = hash_secret("1234", n=2**4), hash_secret("1234", n=2**4)
    assert first != second  # a random salt each time
    parsed = parse_hash(first)
    assert (parsed.n, parsed.r, parsed.p) == (16, 8, 1)
    assert first.startswith("scrypt$16$8$1$")


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "1234",
        "bcrypt$16$8$1$00112233445566778899aabbccddeeff$" + "00" * 32,
        "scrypt$15$8$1$00112233445566778899aabbccddeeff$" + "00" * 32,  # n not a power of 2
        "scrypt$16$8$1$zz$" + "00" * 32,
        "scrypt$16$8$1$0011$" + "00" * 32,  # salt too short
    ],
)
def test_malformed_hashes_are_refused(encoded: str) -> None:
    with pytest.raises(HashFormatError):
        parse_hash(encoded)


def test_limiter_counts_per_client_and_in_total() -> None:
    limiter = FailureLimiter(per_client=3, total=5, window_s=100.0)
    for t in range(3):
        assert limiter.retry_after_s("a", float(t)) is None
        limiter.failed("a", float(t))
    assert limiter.retry_after_s("a", 3.0) == pytest.approx(97.0)
    assert limiter.retry_after_s("b", 3.0) is None  # another client may still try
    limiter.failed("b", 3.0)
    limiter.failed("c", 4.0)
    assert limiter.retry_after_s("d", 5.0) == pytest.approx(95.0)  # five in all: everyone waits
    assert limiter.retry_after_s("a", 101.0) is None  # the window has passed


@pytest.mark.parametrize(
    ("cookie", "form", "ok"),
    [
        ("t" * 32, "t" * 32, True),
        ("t" * 32, "u" * 32, False),
        (None, "t" * 32, False),
        ("t" * 32, None, False),
        ("short", "short", False),
    ],
)
def test_csrf_needs_the_cookie_token_repeated(
    cookie: str | None, form: str | None, ok: bool
) -> None:
    assert csrf_ok(cookie, form) is ok


def test_same_origin_compares_host_and_port() -> None:
    assert same_origin(None, "box:8080")
    assert same_origin("http://box:8080", "box:8080")
    assert not same_origin("http://box:9090", "box:8080")
    assert not same_origin("null", "box:8080")


def test_sparkline_breaks_at_gaps_and_places_the_limit_line() -> None:
    series = [(0.0, 97.0), (60.0, 96.0), (120.0, None), (600.0, 88.0), (660.0, 90.0)]
    line = sparkline(series, 0.0, 660.0, bucket_s=60, floor=90, ceiling=100, limit=92)
    assert line.path.count("M") == 2 and line.path.count("L") == 2
    assert (line.low, line.high) == (88.0, 100.0)
    assert line.limit_y is not None and 0 < line.limit_y < line.height
    ys = [
        float(part.split()[1])
        for part in line.path.replace("M", "|").replace("L", "|").split("|")[1:]
    ]
    assert max(ys) == pytest.approx(line.height - 3.0)  # 88 % is the lowest point drawn
    assert sparkline([], 0.0, 60.0, bucket_s=60).empty


def test_band_chart_draws_one_band_and_median_per_run() -> None:
    rows = [(0.0, 90.0, 94.0, 97.0), (60.0, 91.0, 95.0, 98.0), (3600.0, 85.0, 88.0, 92.0)]
    chart = band_chart("spo2_percent", rows, 0.0, 3600.0)
    assert chart is not None
    assert chart.band.count("Z") == 2 and chart.median.count("M") == 2
    assert (chart.low, chart.high, chart.minutes) == (85.0, 98.0, 3)
    assert band_chart("spo2_percent", [], 0.0, 10.0) is None


@pytest.mark.parametrize(
    ("web", "message"),
    [
        ({"listen": "8080"}, "web.listen: expected HOST:PORT"),
        ({"listen": "0.0.0.0:99999"}, "web.listen: expected HOST:PORT"),
        ({"pin_hash": "1234"}, "web.pin_hash: expected scrypt$"),
        ({"language": "fr"}, "web.language: expected one of zh, en"),
        ({"port": 1}, "web.port: unknown key"),
    ],
)
def test_web_config_errors_name_the_key(web: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("$", r"\$")):
        parse_config({"web": web})


def test_web_config_defaults_to_off_and_parses_listen() -> None:
    assert not parse_config({}).web.enabled
    web = parse_config({"web": {"listen": "0.0.0.0:8080", "language": "en"}}).web
    assert web.enabled and web.host_port == ("0.0.0.0", 8080) and web.language == "en"


def test_display_names_stay_in_their_table(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "db.sqlite", "gw")
    store.add_patient(Patient("p-1", Tier.RED, Profile.DEFAULT), NOW_S)
    set_display_name(store, "p-1", " 王阿姨 ", NOW_S)
    assert display_names(store) == {"p-1": "王阿姨"}
    with pytest.raises(StoreError, match="no patient"):
        set_display_name(store, "p-2", "x", NOW_S)
    with pytest.raises(StoreError, match="1-64 printable"):
        set_display_name(store, "p-1", "a\nb", NOW_S)
    assert clear_display_name(store, "p-1") and display_names(store) == {}
    store.close()


@settings(max_examples=15, deadline=None)
@given(
    st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=6),
    st.lists(st.one_of(st.none(), st.floats(80, 100)), min_size=1, max_size=40),
    st.integers(min_value=0, max_value=90),
)
def test_incremental_cache_equals_a_fresh_read(
    tmp_path_factory: pytest.TempPathFactory,
    steps_s: list[int],
    values: list[float | None],
    late_s: int,
) -> None:
    """Also with a reading stored late (up to 90 s older than the newest one)."""
    store = Store.open(tmp_path_factory.mktemp("cache") / "db.sqlite", "gw")
    store.add_patient(Patient("p-1", Tier.RED, Profile.DEFAULT), NOW_S)
    incremental = SeriesCache()
    now_s = NOW_S
    for step_s in steps_s:
        rows = [
            ReadingRow(now_s + i * step_s / len(values), "p-1", "ox", "spo2_percent", v, 0)
            for i, v in enumerate(values)
        ]
        rows.append(ReadingRow(now_s - late_s, "p-1", "ox", "spo2_percent", 90.0, 0))
        store.write_batch(rows, [], {}, message, now_s)
        now_s += step_s
        incremental.refresh(store, now_s)
    fresh = SeriesCache()
    assert fresh.refresh(store, now_s)
    sliced = SeriesCache()  # built 2 minutes at a time, as the daemon's page does
    calls = 1
    while not sliced.refresh(store, now_s, max_span_s=120):
        calls += 1
    assert calls >= (now_s - NOW_S) // 120
    [series_id] = [row[0] for row in store.db.execute("SELECT id FROM reading_series")]
    flat = [x for point in incremental.series(series_id) for x in point]
    assert flat == pytest.approx([x for point in fresh.series(series_id) for x in point])
    assert [x for point in sliced.series(series_id) for x in point] == pytest.approx(
        [x for point in fresh.series(series_id) for x in point]
    )
    assert incremental.latest(series_id) == fresh.latest(series_id) == sliced.latest(series_id)
    store.close()
