"""The fake-bluetoothd fixtures (defined in ble_fixtures.py, shared with tests/gateway)."""

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from tests.devices.transports.ble_fixtures import bluez, bus_address

__all__ = ["bluez", "bus_address", "no_blocking_calls"]
# A loop step longer than this is a blocking call: generous, so that a busy machine (asyncio
# debug mode is slow too) does not trip it, while the blocking reads and sleeps it guards
# against (serial timeouts, D-Bus round trips on the loop) take longer still.
SLOW_CALLBACK_S = 0.5


@pytest.fixture
async def no_blocking_calls(caplog: pytest.LogCaptureFixture) -> AsyncIterator[None]:
    """Fail a test whose code blocks the event loop (asyncio's debug mode reports it)."""
    loop = asyncio.get_running_loop()
    loop.set_debug(True)
    loop.slow_callback_duration = SLOW_CALLBACK_S
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        yield
    loop.set_debug(False)
    records = caplog.get_records("setup") + caplog.get_records("call")
    slow = [r.getMessage() for r in records if r.name == "asyncio" and "took" in r.getMessage()]
    assert not slow, f"the event loop was blocked: {slow}"
