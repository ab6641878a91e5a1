"""A USB GSM modem (SIM800, EC25 and the like) sending SMS over its AT serial port (pyserial).

Blocking: every call runs on a worker thread (`asyncio.to_thread`). The port is opened and the
modem initialised (AT, ATE0, AT+CMGF=1) on the first send, and again after any failure that may
have left it in an unknown state (an I/O error, a timeout). One `send` is one attempt: the
caller decides about retries (alerts/escalation.py) and the rate (gateway/sms_rate.py).

A network that answers +CMGS only after `send_timeout_s` leaves it unknown whether the message
went. The port stays open, and the next send first reads what the modem said meanwhile: when
the earlier message did go and the next one is the same text to the same number (the caller's
retry), it is not sent twice. With no answer at all, the modem is initialised again and the
message sent again: a contact may then get it twice, which is better than not at all.

Nothing here logs a full phone number.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass

import serial

from gateway.sms_at import (
    CTRL_Z,
    ESC,
    PROMPT,
    Final,
    FinalKind,
    charset_commands,
    cmgs_command,
    describe_final,
    parse_final,
    parse_message_reference,
    text_bytes,
)
from gateway.sms_text import Charset, charset_of, fits_one_sms, mask_phone

log = logging.getLogger(__name__)
POLL_S = 0.2  # each blocking read returns at least this often (to see deadlines and cancel)
INIT_TRIES = 3  # a modem just powered up may swallow the first AT
LATE_ANSWER_WAIT_S = 1.0  # for the answer to an unconfirmed message, at the next send


@dataclass(frozen=True, slots=True)
class ModemTiming:
    command_timeout_s: float = 5.0
    prompt_timeout_s: float = 10.0
    send_timeout_s: float = 60.0  # +CMGS on a slow network takes 30-60 s


class SmsError(Exception):
    """One attempt failed; `retryable` says whether a later attempt may succeed."""

    def __init__(self, reason: str, retryable: bool = True, unknown_state: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.unknown_state = unknown_state  # no answer: the modem is initialised again


class _CancelledError(Exception):
    """`cancel()` was called while a send was waiting."""


class SmsModem:
    """One modem on one serial port."""

    def __init__(self, port: str, baudrate: int, timing: ModemTiming | None = None) -> None:
        self.port_path = port
        self.baudrate = baudrate
        self.timing = timing or ModemTiming()
        self._port: serial.Serial | None = None
        self._buffer = bytearray()
        self._cancelled = threading.Event()
        self._unconfirmed: tuple[str, str] | None = None  # (number, text) with no answer yet

    def send(self, number: str, text: str) -> int | None:
        """Send `text` to `number` as one SMS; returns the network's message reference (None
        when the modem said OK without one). Raises SmsError."""
        if not fits_one_sms(text):
            raise SmsError("the text does not fit one SMS", retryable=False)
        charset = charset_of(text)
        try:
            if self._unconfirmed is not None:
                went_before, reference = self._settle_unconfirmed(number, text)
                if went_before:
                    return reference
            if self._port is None:
                self._open()
            for command in charset_commands(charset):
                self._command(command, self.timing.command_timeout_s)
            return self._submit(number, text, charset)
        except SmsError as exc:
            if exc.unknown_state:
                self.close()  # initialise again on the next send
            raise
        except (serial.SerialException, OSError) as exc:
            self.close()
            raise SmsError(f"modem port {self.port_path}: {exc}") from exc
        except _CancelledError:
            self.close()
            raise SmsError("cancelled (the daemon is stopping)") from None

    def cancel(self) -> None:
        """Make a send waiting on another thread give up within POLL_S."""
        self._cancelled.set()

    def close(self) -> None:
        self._unconfirmed = None  # whatever the modem still says is lost with the port
        if self._port is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                self._port.close()
            self._port = None
        self._buffer.clear()

    # -- the dialogue --------------------------------------------------------------------------

    def _open(self) -> None:
        self._port = serial.Serial(
            self.port_path, self.baudrate, timeout=POLL_S, write_timeout=5.0, exclusive=True
        )
        self._buffer.clear()
        for attempt in range(1, INIT_TRIES + 1):
            try:
                self._command("AT", self.timing.command_timeout_s / INIT_TRIES)
                break
            except SmsError:
                if attempt == INIT_TRIES:
                    raise SmsError(
                        f"no answer to AT on {self.port_path}: is the modem powered and is "
                        "this its AT port?",
                        unknown_state=True,
                    ) from None
        self._command("ATE0", self.timing.command_timeout_s)
        self._command("AT+CMGF=1", self.timing.command_timeout_s)
        log.info("SMS modem ready on %s", self.port_path)

    def _submit(self, number: str, text: str, charset: Charset) -> int | None:
        command = cmgs_command(number, charset)
        self._write(command.encode("ascii") + b"\r")
        self._wait_prompt(time.monotonic() + self.timing.prompt_timeout_s)
        self._write(text_bytes(text, charset) + CTRL_Z)
        deadline = time.monotonic() + self.timing.send_timeout_s
        reference: int | None = None
        while True:
            line = self._read_line(deadline)
            if line is None:
                self._unconfirmed = (number, text)  # its answer is looked for at the next send
                raise SmsError(
                    f"no answer from the network within {self.timing.send_timeout_s:g} s "
                    f"(to {mask_phone(number)}); the message may have gone"
                )
            if (mr := parse_message_reference(line)) is not None:
                reference = mr
                continue
            final = parse_final(line)
            if final is None:
                continue
            if final.kind is FinalKind.OK:
                return reference
            raise SmsError(*describe_final(final))

    def _settle_unconfirmed(self, number: str, text: str) -> tuple[bool, int | None]:
        """What became of the unconfirmed message: (True, its reference) when it went and is
        the one being sent now, which is then not sent again; else (False, None), with the
        modem closed when it still has not answered."""
        assert self._unconfirmed is not None
        earlier, self._unconfirmed = self._unconfirmed, None
        went, reference = self._late_answer(time.monotonic() + LATE_ANSWER_WAIT_S)
        to = mask_phone(earlier[0])
        if went is None:
            log.warning(
                "SMS to %s: still no answer from the network; the modem is initialised again"
                " (if that message went, it may arrive twice)",
                to,
            )
            self.close()
        elif not went:
            log.info("SMS to %s: the network refused it after all", to)
        elif earlier == (number, text):
            log.info("SMS to %s went after all (reference %s): not sent again", to, reference)
            return True, reference
        else:
            log.info("SMS to %s went after all (reference %s)", to, reference)
        return False, None

    def _late_answer(self, deadline: float) -> tuple[bool | None, int | None]:
        """Read the modem's late answer to +CMGS: (True, reference) it went, (False, None) it
        was refused, (None, None) nothing by the deadline."""
        reference: int | None = None
        while (line := self._read_line(deadline)) is not None:
            if (mr := parse_message_reference(line)) is not None:
                reference = mr
            elif (final := parse_final(line)) is not None:
                return final.kind is FinalKind.OK, reference
        return None, None

    def _command(self, command: str, timeout_s: float) -> list[str]:
        """Write one command; its answer lines up to OK (echo and unsolicited lines included)."""
        self._write(command.encode("ascii") + b"\r")
        deadline = time.monotonic() + timeout_s
        lines: list[str] = []
        while True:
            line = self._read_line(deadline)
            if line is None:
                raise SmsError(f"no answer to {command} within {timeout_s:g} s", unknown_state=True)
            final: Final | None = parse_final(line)
            if final is None:
                if line != command:  # the echo, until ATE0
                    lines.append(line)
                continue
            if final.kind is FinalKind.OK:
                return lines
            reason, retryable = describe_final(final)
            raise SmsError(f"{command}: {reason}", retryable)

    def _wait_prompt(self, deadline: float) -> None:
        """Wait for "> "; a final result code instead is the modem's refusal."""
        while True:
            while self._buffer and self._buffer[0] in b"\r\n":
                del self._buffer[:1]
            if self._buffer.startswith(PROMPT):
                del self._buffer[: 2 if self._buffer[1:2] == b" " else 1]
                return
            if b"\r" in self._buffer or b"\n" in self._buffer:
                line = self._pop_line()
                final = parse_final(line)
                if final is not None:
                    reason, retryable = describe_final(final)
                    raise SmsError(f"AT+CMGS: {reason}", retryable)
                continue
            if time.monotonic() >= deadline:
                self._write(ESC)
                raise SmsError(
                    f"no prompt after AT+CMGS within {self.timing.prompt_timeout_s:g} s",
                    unknown_state=True,
                )
            self._fill()

    def _read_line(self, deadline: float) -> str | None:
        """The next non-empty line, or None at the deadline."""
        while True:
            if b"\r" in self._buffer or b"\n" in self._buffer:
                line = self._pop_line()
                if line:
                    return line
                continue
            if time.monotonic() >= deadline:
                return None
            self._fill()

    def _pop_line(self) -> str:
        ends = [i for i in (self._buffer.find(b"\r"), self._buffer.find(b"\n")) if i >= 0]
        end = min(ends)
        raw = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        return raw.decode("ascii", errors="replace").strip()

    def _fill(self) -> None:
        if self._cancelled.is_set():
            raise _CancelledError
        assert self._port is not None
        data = self._port.read(max(1, self._port.in_waiting))
        self._buffer.extend(data)

    def _write(self, data: bytes) -> None:
        assert self._port is not None
        self._port.write(data)
        self._port.flush()
