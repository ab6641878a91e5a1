"""The serial transport (pyserial): USB-serial cables and RS-232 outputs of oximeters.

A port is named by its path (`/dev/ttyUSB0`, or a stable `/dev/serial/by-id/...` link) and/or
by the USB adapter's VID:PID and serial number, looked up among the ports present each time
the port is (re)opened. The line settings come from the protocol (Contec V5.1 19200 8O1,
Contec V7 115200 8N1, Nonin and Masimo 9600 8N1) unless the config overrides the baud rate.

Every blocking call (open, read, write, close) runs in a worker thread; the event loop only
waits. A `SerialLink` loops for ever: open, send the start commands, read, send keep-alives,
watch for silence; when the device is unplugged (read error, or the port is gone) it closes
the port and reopens it with backoff, sending the start commands again.

Module name: `serial_port`, so that `import serial` always means pyserial.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import serial
from serial.tools import list_ports
from serial.tools.list_ports_common import ListPortInfo

from devices.backoff import FailureKind
from devices.clock import Clock
from devices.link import (
    BytesPump,
    BytesSink,
    LinkState,
    LinkStatus,
    LinkTiming,
    Retry,
    keep_linked,
)
from devices.protocols.spec import ProtocolSpec, SerialSettings

log = logging.getLogger(__name__)
READ_CHUNK_MAX_BYTES = 4096
PortLister = Callable[[], Sequence[ListPortInfo]]


@dataclass(frozen=True, slots=True)
class SerialPortSpec:
    """Where one serial device is plugged in, and what it speaks."""

    device_id: str
    protocol: str
    port: str | None = None
    usb_vid: int | None = None
    usb_pid: int | None = None
    serial_number: str | None = None
    baudrate: int | None = None  # None: the protocol's

    def describe(self) -> str:
        parts = [self.port] if self.port else []
        if self.usb_vid is not None and self.usb_pid is not None:
            parts.append(f"USB {self.usb_vid:04x}:{self.usb_pid:04x}")
        if self.serial_number:
            parts.append(f"serial number {self.serial_number}")
        return ", ".join(parts)


class PortNotFoundError(LookupError):
    """No port matches the device's path or USB identity (unplugged, or another adapter)."""


def _usb_matches(spec: SerialPortSpec, info: ListPortInfo) -> bool:
    if spec.usb_vid is not None and info.vid != spec.usb_vid:
        return False
    if spec.usb_pid is not None and info.pid != spec.usb_pid:
        return False
    return spec.serial_number is None or info.serial_number == spec.serial_number


def resolve_port(spec: SerialPortSpec, ports: Iterable[ListPortInfo]) -> str:
    """The device path to open for `spec`, given the ports present now.

    A configured path wins when it exists (ptys and udev links are never listed by pyserial);
    with a USB identity too, the path must also be that adapter. Otherwise the only listed
    port with that USB identity is used. Raises PortNotFoundError with what was looked for.
    """
    ports = list(ports)
    by_usb = spec.usb_vid is not None or spec.serial_number is not None
    if spec.port is not None:
        if not os.path.exists(spec.port):
            raise PortNotFoundError(f"{spec.port} does not exist: is the cable plugged in?")
        if not by_usb:
            return spec.port
        real = os.path.realpath(spec.port)
        for info in ports:
            if os.path.realpath(info.device) == real:
                if _usb_matches(spec, info):
                    return spec.port
                raise PortNotFoundError(
                    f"{spec.port} is another USB adapter than {spec.describe()}"
                )
        return spec.port  # a path the system does not list (pty, socat link): trust the config
    matches = [info.device for info in ports if _usb_matches(spec, info)]
    if not matches:
        raise PortNotFoundError(f"no port with {spec.describe()}: is the cable plugged in?")
    if len(matches) > 1:
        raise PortNotFoundError(
            f"{len(matches)} ports match {spec.describe()} ({', '.join(matches)}): "
            "add serial_number or port to tell them apart"
        )
    return matches[0]


def open_port(path: str, settings: SerialSettings, timeout_s: float) -> serial.Serial:
    """Open `path` with the protocol's line settings (blocking: call it in a thread)."""
    port = serial.Serial(
        path,
        baudrate=settings.baudrate,
        bytesize=settings.bytesize,
        parity=settings.parity,
        stopbits=settings.stopbits,
        timeout=timeout_s,
        write_timeout=timeout_s * 5,
        exclusive=True,
    )
    return port


def read_chunk(port: serial.Serial) -> bytes:
    """What has arrived, or the next byte within the port's timeout (blocking)."""
    waiting = port.in_waiting
    data: bytes = port.read(min(max(waiting, 1), READ_CHUNK_MAX_BYTES))
    return data


class SerialLink:
    """Keeps one serial device open and its bytes flowing into a sink."""

    def __init__(
        self,
        status: LinkStatus,
        port_spec: SerialPortSpec,
        spec: ProtocolSpec,
        clock: Clock,
        timing: LinkTiming,
        list_ports_now: PortLister = list_ports.comports,
    ) -> None:
        if spec.serial is None:
            raise ValueError(f"protocol {spec.name} has no serial settings")
        self.status = status
        self.port_spec = port_spec
        self.spec = spec
        self.settings = spec.serial
        if port_spec.baudrate is not None:
            self.settings = SerialSettings(
                port_spec.baudrate, spec.serial.bytesize, spec.serial.parity, spec.serial.stopbits
            )
        self.clock = clock
        self.timing = timing
        self.list_ports_now = list_ports_now
        self.retry = Retry(timing.backoff_scale)
        self._pump = BytesPump(status.device_id, clock, status)
        self._opens = 0

    @property
    def name(self) -> str:
        return f"{self.status.device_id} ({self.spec.name})"

    async def run(self, sink: BytesSink) -> None:
        """Open, stream, reopen; until cancelled."""
        await keep_linked(self.name, self._pump, sink, self.status, self.retry, self._attempt)

    async def _attempt(self) -> tuple[FailureKind, str]:
        self.status.set(LinkState.CONNECTING)
        try:
            path = resolve_port(self.port_spec, await asyncio.to_thread(self.list_ports_now))
            port = await asyncio.to_thread(
                open_port, path, self.settings, self.timing.serial_read_timeout_s
            )
        except PortNotFoundError as exc:
            return FailureKind.PORT_MISSING, str(exc)
        except (serial.SerialException, OSError) as exc:
            return FailureKind.PORT_MISSING, f"cannot open the port: {exc}"
        try:
            return await self._stream(port, path)
        except (serial.SerialException, OSError) as exc:
            return FailureKind.PORT_ERROR, f"port error (unplugged?): {exc}"
        finally:
            with contextlib.suppress(serial.SerialException, OSError):
                await asyncio.to_thread(port.close)

    async def _stream(self, port: serial.Serial, path: str) -> tuple[FailureKind, str]:
        for command in self.spec.start_commands:
            await asyncio.to_thread(port.write, command)
        self._opens += 1
        self.status.reconnects = self._opens - 1
        self.status.connected_since_s = self.clock.now_s()
        self.status.set(LinkState.CONNECTED)
        log.info("%s: %s open at %d baud", self.name, path, self.settings.baudrate)
        keepalive_s = self.timing.keepalive_interval_s or self.spec.keepalive_interval_s
        started = last_data = next_keepalive = time.monotonic()
        while True:
            data = await asyncio.to_thread(read_chunk, port)
            now = time.monotonic()
            if data:
                self._pump.put(data)
                last_data = now
                if now - started > self.timing.silence_timeout_s:
                    self.retry.reset()  # a port that streamed a while is a healthy port
            elif now - last_data > self.timing.silence_timeout_s:
                return FailureKind.SILENT, (
                    f"no data for {self.timing.silence_timeout_s:g} s; reopening the port"
                )
            if keepalive_s and self.spec.keepalive_command and now >= next_keepalive:
                await asyncio.to_thread(port.write, self.spec.keepalive_command)
                next_keepalive = now + keepalive_s
