"""The hub's handling of a received device record, gap, summary or raw-data chunk: parse it
by its topic's leaf (sync/hub_data_messages.py), store it once (sync/hub_data.py), log it.

`PayloadError` for a malformed message (the caller logs it and keeps it aside);
`HubStoreError` when the database fails (the caller does not acknowledge the message).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sync.hub_data_messages import (
    DataRecord,
    DeviceRecord,
    GapRecord,
    Summary,
    parse_devices_message,
    parse_raw_answer,
    parse_summary,
)
from sync.payload import PayloadError
from sync.records import DEVICES_LEAF
from sync.summaries import RAW_LEAF, SUMMARIES_LEAF

if TYPE_CHECKING:
    from sync.hub_store import HubStore

log = logging.getLogger(__name__)

DATA_LEAVES = (DEVICES_LEAF, SUMMARIES_LEAF, RAW_LEAF)


def parse_data_message(site: str, gateway: str, leaf: str, payload: bytes) -> DataRecord:
    """The record in a message on one of the DATA_LEAVES topics."""
    if leaf == DEVICES_LEAF:
        return parse_devices_message(site, gateway, payload)
    if leaf == SUMMARIES_LEAF:
        return parse_summary(site, gateway, payload)
    if leaf == RAW_LEAF:
        return parse_raw_answer(site, gateway, payload)
    raise PayloadError(f"the hub does not handle {leaf!r} topics")


def describe(record: DataRecord) -> str:
    """One log line's worth of a stored record (pseudonymous ids only)."""
    late = " (historical)" if record.historical else ""
    where = f"from {record.site}/{record.gateway}{late}"
    if isinstance(record, DeviceRecord):
        return f"device {record.device} of patient {record.patient} {record.event} {where}"
    if isinstance(record, GapRecord):
        return (
            f"data gap of {record.duration_s} s, device {record.device} of patient"
            f" {record.patient} {where}"
        )
    if isinstance(record, Summary):
        minutes = len({minute.minute_s for minute in record.minutes})
        return f"summary of patient {record.patient}, {minutes} minutes {where}"
    return (
        f"raw data of patient {record.patient}, chunk {record.chunk + 1} of {record.chunks},"
        f" {len(record.readings)} readings (request {record.request_id[:8]}) {where}"
    )


def handle_data_message(
    store: HubStore, site: str, gateway: str, leaf: str, payload: bytes, received_s: float
) -> bool:
    """Parse and store one message; False if it was already stored (a redelivery)."""
    record = parse_data_message(site, gateway, leaf, payload)
    added = store.record_data(record, received_s)
    if added:
        log.info("%s", describe(record))
    return added
