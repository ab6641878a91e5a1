"""Serial oximeters on pseudo-terminals: a simulator thread drives the pty's master end and
speaks the real byte protocol, paced to the baud rate (ptys ignore the baud rate, so the
simulator spaces its bytes itself at baud / 10 bytes a second, as 8N1 / 8O1 lines do).

The gateway opens the slave end through a symlink (`link_path`), like a udev
`/dev/serial/by-id/...` link. `unplug()` closes the pty (the gateway's reads fail as they do
when a USB-serial cable is pulled) and removes the link; `plug()` makes a new pty and points
the link at it, as a replugged cable gets a new /dev/ttyUSBn.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path

from devices.protocols.oximeter_contec_v5 import encode_contec_v5_frame
from devices.protocols.oximeter_contec_v7 import (
    CMD_START_REALTIME,
    CMD_STOP_REALTIME,
    TYPE_COMMAND,
    decode_data_bytes,
    encode_realtime_packet,
)
from devices.protocols.oximeter_masimo import encode_ascii1_line

Vitals = Callable[[float], tuple[int, int]]  # scenario seconds -> (SpO2 %, pulse bpm)
BITS_PER_BYTE = 10  # start bit, 8 data bits, stop bit (a parity bit makes 11; close enough)
V7_COMMAND_LEN = 9


def steady(spo2_percent: int = 97, pulse_bpm: int = 72) -> Vitals:
    return lambda _t_s: (spo2_percent, pulse_bpm)


class PtyDevice:
    """A simulated serial device behind a pty; subclasses say what it sends and hears."""

    frames_per_s = 1.0

    def __init__(self, link_path: Path, baudrate: int, vitals: Vitals, speed: float = 1.0) -> None:
        self.link_path = link_path
        self.baudrate = baudrate
        self.vitals = vitals
        self.speed = speed  # scenario seconds per real second
        self.received = bytearray()
        self.bytes_sent = 0
        self.dropped_bytes = 0  # written while nobody had the port open
        self._fds: tuple[int, int] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started_s = time.monotonic()
        self._line_free_at = 0.0

    # -- the cable ---------------------------------------------------------------------------

    def plug(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo of our own bytes back to us before the gateway opens it
        os.set_blocking(master, False)
        self._fds = (master, slave)
        with contextlib.suppress(FileNotFoundError):
            self.link_path.unlink()
        self.link_path.symlink_to(os.ttyname(slave))
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)
        self._thread.start()

    def unplug(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with contextlib.suppress(FileNotFoundError):
            self.link_path.unlink()
        if self._fds is not None:
            for fd in self._fds:
                os.close(fd)
            self._fds = None

    # -- the device ----------------------------------------------------------------------------

    def scenario_s(self) -> float:
        return (time.monotonic() - self._started_s) * self.speed

    def on_bytes(self, data: bytes) -> None:
        """Bytes the gateway wrote."""

    def is_streaming(self) -> bool:
        return True

    def frame(self) -> bytes:
        raise NotImplementedError

    def _run(self) -> None:
        assert self._fds is not None
        master = self._fds[0]
        next_frame = time.monotonic()
        while not self._stop.is_set():
            timeout = max(0.0, min(0.05, next_frame - time.monotonic()))
            readable, _, _ = select.select([master], [], [], timeout)
            if readable:
                with contextlib.suppress(BlockingIOError):
                    data = os.read(master, 4096)
                    self.received.extend(data)
                    self.on_bytes(data)
            if time.monotonic() >= next_frame:
                next_frame += 1.0 / self.frames_per_s
                if self.is_streaming():
                    self._send(master, self.frame())

    def _send(self, master: int, data: bytes) -> None:
        """Write `data` no faster than the line carries it."""
        delay_s = self._line_free_at - time.monotonic()
        if delay_s > 0:
            time.sleep(delay_s)
        try:
            written = os.write(master, data)
        except OSError as exc:  # nobody has the port open and the pty buffer is full
            if exc.errno not in (errno.EAGAIN, errno.EIO):
                raise
            written = 0
        self.dropped_bytes += len(data) - written
        self.bytes_sent += written
        self._line_free_at = (
            max(self._line_free_at, time.monotonic()) + len(data) * BITS_PER_BYTE / self.baudrate
        )


class ContecV5Device(PtyDevice):
    """A CMS50D+ with the V5.1 firmware: 60 frames a second as soon as it has power."""

    frames_per_s = 60.0

    def __init__(self, link_path: Path, vitals: Vitals, speed: float = 1.0) -> None:
        super().__init__(link_path, 19200, vitals, speed)

    def frame(self) -> bytes:
        spo2, pulse = self.vitals(self.scenario_s())
        return encode_contec_v5_frame(spo2, pulse)


class MasimoDevice(PtyDevice):
    """A Rad-8 with its serial output set to ASCII 1: one line a second at 9600 baud."""

    def __init__(self, link_path: Path, vitals: Vitals, speed: float = 1.0) -> None:
        super().__init__(link_path, 9600, vitals, speed)
        self.frames_per_s = speed  # one line per scenario second

    def frame(self) -> bytes:
        spo2, pulse = self.vitals(self.scenario_s())
        return encode_ascii1_line(spo2, pulse, 2.5)


class ContecV7Device(PtyDevice):
    """A CMS50D+ with the V7.0 firmware: silent until "start real-time", then 60 packets a
    second while the host says "I am connected" (0xAF) at least every `keepalive_timeout_s`."""

    frames_per_s = 60.0

    def __init__(
        self,
        link_path: Path,
        vitals: Vitals,
        speed: float = 1.0,
        keepalive_timeout_s: float = 5.0,
    ) -> None:
        super().__init__(link_path, 115200, vitals, speed)
        self.keepalive_timeout_s = keepalive_timeout_s
        self.commands: list[int] = []
        self.stopped_for_silence = 0
        self._streaming = False
        self._last_host_s = 0.0
        self._pending = b""

    def on_bytes(self, data: bytes) -> None:
        self._pending += data
        while len(self._pending) >= V7_COMMAND_LEN:
            start = self._pending.find(bytes((TYPE_COMMAND,)))
            if start < 0:
                self._pending = b""
                return
            packet = self._pending[start : start + V7_COMMAND_LEN]
            if len(packet) < V7_COMMAND_LEN:
                self._pending = self._pending[start:]
                return
            self._pending = self._pending[start + V7_COMMAND_LEN :]
            self._command(decode_data_bytes(packet)[0])

    def _command(self, code: int) -> None:
        self.commands.append(code)
        self._last_host_s = time.monotonic()
        if code == CMD_START_REALTIME:
            self._streaming = True
        elif code == CMD_STOP_REALTIME:
            self._streaming = False

    def is_streaming(self) -> bool:
        if self._streaming and time.monotonic() - self._last_host_s > self.keepalive_timeout_s:
            self._streaming = False  # the host is gone, as far as the oximeter can tell
            self.stopped_for_silence += 1
        return self._streaming

    def frame(self) -> bytes:
        spo2, pulse = self.vitals(self.scenario_s())
        return encode_realtime_packet(spo2, pulse, pi_percent=3.1)
