"""The AT dialogue of sending one SMS in text mode (3GPP TS 27.005), as pure functions: the
commands to write, and what the modem's answer lines mean. gateway/sms_modem.py does the I/O.

    AT              -> OK                  (is anyone there; echo may still be on)
    ATE0            -> OK                  (echo off: answers are then only answers)
    AT+CMGF=1       -> OK                  (text mode)
    AT+CSCS="UCS2"  -> OK                  (or "GSM": the character set of text and number)
    AT+CSMP=17,167,0,8 -> OK               (SMS-SUBMIT, valid 24 h, data coding 8 = UCS2; 0 = GSM)
    AT+CMGS="<number>" -> "> "             (the prompt; the number in the same character set)
    <text> Ctrl-Z   -> +CMGS: <mr>, OK     (after 1-60 s: the network's answer)

Failures end a command with ERROR, `+CMS ERROR: <n>` (27.005 3.2.5; 0-127 and 128-255 are
the network's and the SIM's causes, 300-511 the modem's) or `+CME ERROR: <n>` (27.007 9.2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from gateway.sms_text import Charset, ucs2_hex

CTRL_Z = b"\x1a"  # ends the text and sends it
ESC = b"\x1b"  # abandons the text at the prompt
PROMPT = b">"  # the modem's "> " after AT+CMGS
SMS_SUBMIT_VALIDITY = "17,167,0"  # first octet 17 (SMS-SUBMIT, relative validity), 167 = 24 h
DCS_GSM = 0
DCS_UCS2 = 8
_CMGS = re.compile(r"^\+CMGS:\s*(\d+)")
_CMS = re.compile(r"^\+CMS ERROR:\s*(\d+)")
_CME = re.compile(r"^\+CME ERROR:\s*(\d+)")


class FinalKind(StrEnum):
    OK = "OK"
    ERROR = "ERROR"
    CMS_ERROR = "+CMS ERROR"
    CME_ERROR = "+CME ERROR"


@dataclass(frozen=True, slots=True)
class Final:
    """The line that ends a command's answer."""

    kind: FinalKind
    code: int | None = None


def parse_final(line: str) -> Final | None:
    """The final result code on `line`, or None (an intermediate or unsolicited line)."""
    line = line.strip()
    if line == "OK":
        return Final(FinalKind.OK)
    if line == "ERROR":
        return Final(FinalKind.ERROR)
    if match := _CMS.match(line):
        return Final(FinalKind.CMS_ERROR, int(match[1]))
    if match := _CME.match(line):
        return Final(FinalKind.CME_ERROR, int(match[1]))
    return None


def parse_message_reference(line: str) -> int | None:
    """The message reference of `+CMGS: <mr>`, or None for any other line."""
    match = _CMGS.match(line.strip())
    return int(match[1]) if match else None


def charset_commands(charset: Charset) -> list[str]:
    """Select the character set and the matching data coding scheme."""
    dcs = DCS_UCS2 if charset is Charset.UCS2 else DCS_GSM
    return [f'AT+CSCS="{charset.value}"', f"AT+CSMP={SMS_SUBMIT_VALIDITY},{dcs}"]


def cmgs_command(number: str, charset: Charset) -> str:
    """AT+CMGS with the destination number in the selected character set."""
    encoded = ucs2_hex(number) if charset is Charset.UCS2 else number
    return f'AT+CMGS="{encoded}"'


def text_bytes(text: str, charset: Charset) -> bytes:
    """The message body as written after the prompt (without the Ctrl-Z)."""
    if charset is Charset.UCS2:
        return ucs2_hex(text).encode("ascii")
    return text.encode("ascii")  # GSM-safe characters are their ASCII codes (sms_text)


# (reason, worth retrying). Retrying is pointless when the number itself is refused; anything
# about the network, the SIM or the modem may pass (signal returns, someone inserts the SIM).
_CMS_REASONS: dict[int, tuple[str, bool]] = {
    1: ("unassigned number: check the contact's phone number", False),
    8: ("operator barred the SIM from sending", False),
    10: ("call barred", False),
    21: ("short message transfer rejected by the network", True),
    27: ("destination out of service", True),
    28: ("unidentified subscriber: check the contact's phone number", False),
    29: ("facility rejected", True),
    30: ("unknown subscriber: check the contact's phone number", False),
    38: ("network out of order", True),
    41: ("temporary network failure", True),
    42: ("network congestion", True),
    47: ("network resources unavailable", True),
    50: ("SMS not subscribed on this SIM", False),
    69: ("requested facility not implemented", False),
    300: ("modem failure", True),
    302: ("operation not allowed", True),
    304: ("invalid PDU mode parameter", False),
    305: ("invalid text mode parameter", False),
    310: ("no SIM card in the modem", True),
    311: ("the SIM needs its PIN", True),
    313: ("SIM failure", True),
    314: ("SIM busy", True),
    315: ("wrong SIM", True),
    316: ("the SIM needs its PUK", True),
    322: ("modem memory full", True),
    330: ("SMS centre address unknown: set it with AT+CSCA", True),
    331: ("no network service (no signal, or not registered)", True),
    332: ("network timeout", True),
    500: ("unknown modem error", True),
}


def describe_final(final: Final) -> tuple[str, bool]:
    """Why a command failed, in words, and whether trying again later may help."""
    if final.kind is FinalKind.CMS_ERROR and final.code is not None:
        reason, retry = _CMS_REASONS.get(final.code, ("", True))
        return f"+CMS ERROR {final.code}" + (f": {reason}" if reason else ""), retry
    if final.kind is FinalKind.CME_ERROR:
        return f"+CME ERROR {final.code}", True
    return "the modem answered ERROR", True
