"""Bluetooth SIG Health Thermometer Service (0x1809): Temperature Measurement 0x2A1C (indicate).

Reference: Bluetooth SIG Health Thermometer Service 1.0; test vectors from
NordicSemiconductor/Android-BLE-Common-Library TemperatureMeasurementDataCallbackTest.java;
layout in docs PROTOCOLS.md section 2.

  flags u8 | temperature FLOAT32 LE | [flags b1] timestamp: year u16 LE, month, day, h, m, s
           | [flags b2] temperature type u8
  flags b0: 0 = Celsius, 1 = Fahrenheit
One BLE indication carries exactly one measurement. Octets after the fields the flags announce
are ignored (later versions of a GATT characteristic may only append fields).

Intermediate Temperature 0x2A1E has the same layout, but carries the values a thermometer shows
while it is still settling; the gateway subscribes to the final 0x2A1C measurement only, so a
rising reading is never taken for hypothermia.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from devices.protocols.gatt_time import DATE_TIME_SIZE, decode_date_time, encode_date_time
from devices.protocols.ieee11073 import decode_float, encode_float
from devices.protocols.reading import BodySite, DecodeError, Metric, Reading
from devices.protocols.spec import DecoderStats, ProtocolSpec, checked_reading

PROTOCOL_NAME = "hts"
SERVICE_UUID = "00001809-0000-1000-8000-00805f9b34fb"
TEMPERATURE_MEASUREMENT_UUID = "00002a1c-0000-1000-8000-00805f9b34fb"
INTERMEDIATE_TEMPERATURE_UUID = "00002a1e-0000-1000-8000-00805f9b34fb"

FLAG_FAHRENHEIT = 0x01
FLAG_TIMESTAMP = 0x02
FLAG_TYPE = 0x04
_FLAGS_AND_FLOAT_SIZE = 5

# Temperature Type characteristic 0x2A1D codes.
BODY_SITES = {
    1: BodySite.AXILLARY,
    2: BodySite.BODY,
    3: BodySite.EAR,
    4: BodySite.FINGER,
    5: BodySite.GI_TRACT,
    6: BodySite.ORAL,
    7: BodySite.RECTAL,
    8: BodySite.TOE,
    9: BodySite.TYMPANIC,
}
_SITE_CODES = {site: code for code, site in BODY_SITES.items()}


def decode_temperature_measurement(data: bytes) -> Reading | None:
    """The reading in one 0x2A1C/0x2A1E value; None if the temperature is implausible."""
    decoder = HtsDecoder()
    readings = decoder.feed(data)
    return readings[0] if readings else None


@dataclass(slots=True)
class HtsDecoder:
    """Decodes one Temperature Measurement per `feed` call (one BLE indication).

    `utc_offset_s` is how far the thermometer's clock runs ahead of UTC (the Date Time field
    has no time zone; +28800 for a clock set to China Standard Time).
    """

    stats: DecoderStats = field(default_factory=DecoderStats)
    utc_offset_s: float = 0.0

    def feed(self, data: bytes) -> list[Reading]:
        """The temperature reading carried by one indication (empty if implausible)."""
        data = bytes(data)
        if len(data) < _FLAGS_AND_FLOAT_SIZE:
            raise DecodeError(PROTOCOL_NAME, len(data), data, "shorter than flags + FLOAT")
        flags = data[0]
        offset = _FLAGS_AND_FLOAT_SIZE
        device_time_s = None
        if flags & FLAG_TIMESTAMP:
            device_time_s = decode_date_time(
                data, offset, PROTOCOL_NAME, utc_offset_s=self.utc_offset_s
            )
            offset += DATE_TIME_SIZE
        site = None
        if flags & FLAG_TYPE:
            if len(data) <= offset:
                raise DecodeError(PROTOCOL_NAME, offset, data, "temperature type missing")
            site = BODY_SITES.get(data[offset])
        self.stats.frames += 1
        value = decode_float(int.from_bytes(data[1:5], "little"))
        if value is not None and flags & FLAG_FAHRENHEIT:
            value = round((value - 32.0) * 5.0 / 9.0, 2)
        reading = checked_reading(
            self.stats, Metric.TEMP, value, device_time_s=device_time_s, site=site
        )
        return [reading] if reading is not None else []


def encode_temperature_measurement(
    temp_c: float | None,
    *,
    site: BodySite | None = None,
    device_time_s: float | None = None,
    utc_offset_s: float = 0.0,
) -> bytes:
    """A Celsius Temperature Measurement value as a thermometer indicates it.

    A `site` outside the 0x2A1D vocabulary (forehead, skin) is left out.
    """
    flags = 0
    body = struct.pack("<I", encode_float(temp_c))
    if device_time_s is not None:
        flags |= FLAG_TIMESTAMP
        body += encode_date_time(device_time_s, utc_offset_s=utc_offset_s)
    if site is not None and site in _SITE_CODES:
        flags |= FLAG_TYPE
        body += bytes((_SITE_CODES[site],))
    return bytes((flags,)) + body


PROTOCOLS = (
    ProtocolSpec(
        name=PROTOCOL_NAME,
        title="Bluetooth Health Thermometer (0x1809: Temperature Measurement 0x2A1C)",
        transports=frozenset({"ble"}),
        new_decoder=HtsDecoder,
        metrics=frozenset({Metric.TEMP}),
        ble_service_uuids=(SERVICE_UUID,),
        ble_notify_uuids=(TEMPERATURE_MEASUREMENT_UUID,),
        name_patterns=("YHW", "IR42"),
    ),
)
