"""Finding a serial device's port by path and by USB identity (pyserial's ListPortInfo)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from serial.tools.list_ports_common import ListPortInfo

from devices.serial_port import PortNotFoundError, SerialPortSpec, resolve_port

PROLIFIC = (0x067B, 0x2303)
CP210X = (0x10C4, 0xEA60)


def usb_port(device: str, ids: tuple[int, int], serial_number: str | None = None) -> ListPortInfo:
    info = ListPortInfo(device, skip_link_detection=True)
    info.vid, info.pid = ids
    info.serial_number = serial_number
    return info


PORTS = [
    usb_port("/dev/ttyUSB0", PROLIFIC, "A1"),
    usb_port("/dev/ttyUSB1", CP210X, "0001"),
    usb_port("/dev/ttyUSB2", CP210X, "0002"),
]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (SerialPortSpec("a", "contec-v5", usb_vid=0x067B, usb_pid=0x2303), "/dev/ttyUSB0"),
        (SerialPortSpec("b", "contec-v7", serial_number="0002"), "/dev/ttyUSB2"),
        (
            SerialPortSpec("c", "contec-v7", usb_vid=0x10C4, usb_pid=0xEA60, serial_number="0001"),
            "/dev/ttyUSB1",
        ),
    ],
)
def test_port_found_by_usb_identity(spec: SerialPortSpec, expected: str) -> None:
    assert resolve_port(spec, PORTS) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (SerialPortSpec("a", "contec-v5", usb_vid=0x0403, usb_pid=0x6001), "no port with USB 0403"),
        (SerialPortSpec("b", "contec-v7", usb_vid=0x10C4, usb_pid=0xEA60), "2 ports match"),
        (SerialPortSpec("c", "contec-v7", port="/dev/ttyNOPE"), "does not exist"),
    ],
)
def test_missing_or_ambiguous_ports_are_explained(spec: SerialPortSpec, message: str) -> None:
    with pytest.raises(PortNotFoundError, match=message):
        resolve_port(spec, PORTS)


def test_a_configured_path_that_pyserial_does_not_list_is_used(tmp_path: Path) -> None:
    master, slave = os.openpty()
    try:
        link = tmp_path / "ttyOXI"
        link.symlink_to(os.ttyname(slave))
        spec = SerialPortSpec("p", "masimo-ascii", port=str(link), usb_vid=0x067B, usb_pid=0x2303)
        assert resolve_port(spec, PORTS) == str(link)  # ptys are never listed
    finally:
        os.close(master)
        os.close(slave)


def test_a_path_that_is_another_adapter_is_refused(tmp_path: Path) -> None:
    master, slave = os.openpty()
    try:
        path = os.ttyname(slave)
        ports = [usb_port(path, CP210X, "0001")]
        spec = SerialPortSpec("p", "contec-v5", port=path, usb_vid=0x067B, usb_pid=0x2303)
        with pytest.raises(PortNotFoundError, match="another USB adapter"):
            resolve_port(spec, ports)
    finally:
        os.close(master)
        os.close(slave)
