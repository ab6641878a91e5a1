"""A GSM modem on a pseudo-terminal that answers the AT dialogue of sending an SMS in text mode
the way a SIM800 or a Quectel EC25 does: it echoes what it hears until ATE0, answers each
command with <CR><LF>OK<CR><LF>, prompts "> " after AT+CMGS, takes the text up to Ctrl-Z and,
after the network's delay, answers +CMGS: <mr> and OK, or the error it was told to give.

The gateway opens the slave end through a symlink, like /dev/ttyUSB2.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import threading
import time
import tty
from collections import deque
from dataclasses import dataclass
from pathlib import Path

CTRL_Z = 0x1A
ESC = 0x1B
SUCCESS = "success"
SILENT = "silent"  # the network never answers
_CSCS = re.compile(r'^AT\+CSCS="(\w+)"$')
_CSMP = re.compile(r"^AT\+CSMP=17,167,0,(\d+)$")
_CMGS = re.compile(r'^AT\+CMGS="([^"]*)"$')


@dataclass(frozen=True)
class ReceivedSms:
    number: str
    text: str
    charset: str
    dcs: int
    at_s: float  # time.monotonic() when the text was complete


def _decode(value: str, charset: str) -> str:
    return bytes.fromhex(value).decode("utf-16-be") if charset == "UCS2" else value


class PtyModem:
    """Answers: `outcomes` is a queue of what the next AT+CMGS gets (SUCCESS, SILENT, or an
    error line such as "+CMS ERROR: 331"); when it is empty, SUCCESS."""

    def __init__(
        self,
        link_path: Path,
        cmgs_delay_s: float = 0.0,
        outcomes: list[str] | None = None,
        first_reference: int = 12,
        mute: bool = False,
    ) -> None:
        self.link_path = link_path
        self.cmgs_delay_s = cmgs_delay_s
        self.outcomes: deque[str] = deque(outcomes or [])
        self.reference = first_reference
        self.mute = mute  # powered off: hears everything, answers nothing
        self.echo = True
        self.charset = "GSM"
        self.dcs = 0
        self.commands: list[str] = []
        self.submitted: list[ReceivedSms] = []  # every text that came with Ctrl-Z
        self.messages: list[ReceivedSms] = []  # the ones the network took (+CMGS answered)
        self.answers: list[str] = []  # what each submitted text got, in order
        self._line = bytearray()
        self._text: bytearray | None = None  # collecting the text after the prompt
        self._number = ""
        self._fds: tuple[int, int] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PtyModem:
        master, slave = os.openpty()
        tty.setraw(slave)
        self._fds = (master, slave)
        with contextlib.suppress(FileNotFoundError):
            self.link_path.unlink()
        self.link_path.symlink_to(os.ttyname(slave))
        self._thread = threading.Thread(target=self._run, name="pty-modem", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with contextlib.suppress(FileNotFoundError):
            self.link_path.unlink()
        if self._fds is not None:
            for fd in self._fds:
                os.close(fd)
            self._fds = None

    def unsolicited(self, line: str) -> None:
        """An unsolicited result code (+CMTI, RING, +CREG ...), as the modem sends them."""
        self._write(f"\r\n{line}\r\n".encode())

    # -- the modem -----------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        assert self._fds is not None
        os.write(self._fds[0], data)

    def _run(self) -> None:
        assert self._fds is not None
        master = self._fds[0]
        while not self._stop.is_set():
            readable, _, _ = select.select([master], [], [], 0.05)
            if not readable:
                continue
            try:
                data = os.read(master, 4096)
            except OSError:
                return
            if not self.mute:
                for byte in data:
                    self._on_byte(byte)

    def _on_byte(self, byte: int) -> None:
        if self._text is not None:
            if byte == CTRL_Z:
                self._submit(bytes(self._text).decode("ascii"))
                self._text = None
            elif byte == ESC:
                self._text = None
                self._write(b"\r\nOK\r\n")
            else:
                self._text.append(byte)
            return
        if self.echo:
            self._write(bytes((byte,)))
        if byte == ord("\r"):
            command = self._line.decode("ascii", errors="replace").strip()
            self._line.clear()
            if command:
                self.commands.append(command)
                self._command(command)
        elif byte != ord("\n"):
            self._line.append(byte)

    def _command(self, command: str) -> None:
        if command in ("AT", "AT+CMGF=1"):
            self._write(b"\r\nOK\r\n")
        elif command == "ATE0":
            self.echo = False
            self._write(b"\r\nOK\r\n")
        elif match := _CSCS.match(command):
            self.charset = match[1]
            self._write(b"\r\nOK\r\n")
        elif match := _CSMP.match(command):
            self.dcs = int(match[1])
            self._write(b"\r\nOK\r\n")
        elif match := _CMGS.match(command):
            self._number = _decode(match[1], self.charset)
            self._text = bytearray()
            self._write(b"\r\n> ")
        else:
            self._write(b"\r\nERROR\r\n")

    def _submit(self, body: str) -> None:
        text = _decode(body, self.charset)
        received = ReceivedSms(self._number, text, self.charset, self.dcs, time.monotonic())
        self.submitted.append(received)
        outcome = self.outcomes.popleft() if self.outcomes else SUCCESS
        self.answers.append(outcome)
        if self._stop.wait(self.cmgs_delay_s) or outcome == SILENT:
            return
        if outcome == SUCCESS:
            self.messages.append(received)
            self._write(f"\r\n+CMGS: {self.reference}\r\n\r\nOK\r\n".encode())
            self.reference += 1
        else:
            self._write(f"\r\n{outcome}\r\n".encode())
