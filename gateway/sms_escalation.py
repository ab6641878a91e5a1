"""The daemon's SMS escalation task: every few seconds, ask the ladder (alerts/escalation.py)
what is due for the open alerts and send it through the GSM modem, within the rate limit,
recording every attempt and its outcome with the alert (`notification_attempts`).

An attempt is recorded as `sending` before the modem is asked, and finished after: one left
`sending` by a crash or a stop is marked failed at the next start, and retried. Times of the
ladder are the daemon's clock (the alerts' time line); the rate limit is wall time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from alerts.escalation import Notification, Outcome, due_notifications
from alerts.lifecycle import Alert
from gateway.config import Config
from gateway.contacts import (
    escalation_work,
    fail_interrupted,
    finish_attempt,
    start_attempt,
)
from gateway.display_names import display_names
from gateway.sms_modem import ModemTiming, SmsError, SmsModem
from gateway.sms_rate import RateLimit
from gateway.sms_text import AlertSms, compose, mask_phone, patient_label

if TYPE_CHECKING:  # the daemon imports this module
    from gateway.daemon import StoreWorker

log = logging.getLogger(__name__)
TICK_S = 5.0


class SmsEscalation:
    """Runs the ladder against the store and the modem until stopped."""

    def __init__(
        self,
        worker: StoreWorker,
        config: Config,
        now_s: Callable[[], float],
        tick_s: float = TICK_S,
    ) -> None:
        sms = config.sms
        self.worker = worker
        self.enabled = sms.enabled
        self.utc_offset_s = config.detector.utc_offset_s
        self.now_s = now_s
        self.tick_s = tick_s
        self.modem = SmsModem(
            sms.port, sms.baudrate, ModemTiming(send_timeout_s=sms.send_timeout_s)
        )
        self.rate = RateLimit(sms.min_interval_s, sms.max_per_hour)
        self._in_flight = False

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set (or the task is cancelled)."""
        if not self.enabled:
            log.info("SMS escalation is off ([sms] enabled = false)")
            return
        store = self.worker.store
        interrupted = await self.worker.call(fail_interrupted, store, self.now_s())
        if interrupted:
            log.info("%d SMS attempts were interrupted by the last stop; retrying", interrupted)
        try:
            while not stop.is_set():
                await self.tick(stop)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.tick_s)
        finally:
            self.modem.cancel()
            if not self._in_flight:
                self.modem.close()  # else the sending thread closes it as it gives up

    async def tick(self, stop: asyncio.Event) -> int:
        """Send what is due now; returns the number of attempts made."""
        store = self.worker.store
        work = await self.worker.call(escalation_work, store)
        now_s = self.now_s()
        due = [
            (item.alert, note)
            for item in work
            for note in due_notifications(
                item.alert, item.events, item.contacts, item.attempts, now_s
            )
        ]
        if not due:
            return 0
        names = await self.worker.call(display_names, store)
        made = 0
        for alert, note in due:
            wait_s = self.rate.wait_s(time.monotonic())
            if wait_s > self.tick_s:
                log.warning(
                    "SMS rate limit (%d an hour) reached: %d messages wait",
                    self.rate.max_per_hour,
                    len(due) - made,
                )
                break
            if wait_s > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=wait_s)
            if stop.is_set():
                break
            made += await self._attempt(alert, note, names.get(alert.patient_id))
        return made

    async def _attempt(self, alert: Alert, note: Notification, display_name: str | None) -> int:
        """One message sent (1), or none because the alert was acknowledged meanwhile (0)."""
        text = compose(self._message(alert, note, display_name))
        store = self.worker.store
        attempt_id = await self.worker.call(start_attempt, store, note, self.now_s())
        if attempt_id is None:
            log.info(
                "alert %s is no longer open: its SMS to %s is not sent",
                alert.id[:8],
                note.contact.role,
            )
            return 0
        self.rate.record(time.monotonic())
        reference = reason = None
        self._in_flight = True  # stays so if cancelled: the thread closes the port as it ends
        try:
            reference = await asyncio.to_thread(self.modem.send, note.contact.phone, text)
            outcome = Outcome.SENT
        except SmsError as exc:
            outcome = Outcome.FAILED if exc.retryable else Outcome.REJECTED
            reason = exc.reason
        self._in_flight = False
        await self.worker.call(
            finish_attempt, store, attempt_id, outcome, self.now_s(), reference, reason
        )
        log.info(
            "SMS to %s %s for alert %s (%s %s, level %d, try %d): %s",
            note.contact.role,
            mask_phone(note.contact.phone),
            alert.id[:8],
            alert.rule,
            alert.priority,
            note.step + 1,
            note.attempt,
            f"sent, reference {reference}" if outcome is Outcome.SENT else f"{outcome}: {reason}",
        )
        return 1

    def _message(self, alert: Alert, note: Notification, display_name: str | None) -> AlertSms:
        onset_hhmm = time.strftime("%H:%M", time.gmtime(alert.onset_s + self.utc_offset_s))
        return AlertSms(
            rule=alert.rule,
            priority=alert.priority,
            patient=patient_label(note.contact.role, alert.patient_id, display_name),
            details=alert.details,
            onset_hhmm=onset_hhmm,
            unacked_min=int(note.unacked_s // 60) if note.step > 0 else 0,
            language=note.contact.language,
        )
