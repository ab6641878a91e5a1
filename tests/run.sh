#!/usr/bin/env bash
# Everything the test suite needs, on a fresh Debian machine with Python 3.11, then the suite:
# mosquitto and systemd from apt, a virtualenv with pulsegate and its test tools,
# ruff (lint + format), mypy, pytest on 4 workers. Extra arguments go to pytest (-n 0: one process).
set -euo pipefail
cd "$(dirname "$0")/.."

# mosquitto: the real broker of the MQTT tests; systemd: systemd-analyze checks the unit;
# postgresql: the hub's tests start a throwaway cluster of their own (initdb + pg_ctl).
missing=""
command -v mosquitto >/dev/null 2>&1 || missing="$missing mosquitto"
command -v systemd-analyze >/dev/null 2>&1 || missing="$missing systemd"
# dbus: the BLE tests run a private dbus-daemon with a fake bluetoothd on it.
command -v dbus-daemon >/dev/null 2>&1 || missing="$missing dbus"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$missing postgresql"
# chromium: the browser tests of the status page and hub dashboard (Playwright drives it).
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
# a font with Chinese glyphs: the daily report (gateway/report_render.py) is drawn in zh-CN.
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] \
    || [ -e /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc ] \
    || missing="$missing fonts-wqy-microhei"
if [ -n "$missing" ]; then
    echo "== installing$missing"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "== creating .venv"
    "$PYTHON" -m venv .venv
fi
echo "== installing pulsegate and test tools into .venv"
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
# Most of the suite waits on real processes, brokers and clocks, not on the CPU: 4 workers on
# 2 cores take about a third of the time of one.
.venv/bin/python -m pytest -n "${PYTEST_WORKERS:-4}" "$@"
