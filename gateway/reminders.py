"""Alerts nobody acknowledged: re-notify them after the tier's interval and escalate the
rules that escalate (alerts/lifecycle.py decides; this module applies it in the store)."""

from __future__ import annotations

from alerts.lifecycle import Alert, AlertEventKind, due_event
from gateway.store import MessageFactory, Store

_NOTIFYING = ("raised", "renotified", "escalated")


def send_due_reminders(
    store: Store, now_s: float, make_message: MessageFactory
) -> list[tuple[Alert, AlertEventKind]]:
    """Record (with their outbox rows, in one transaction) the reminders and escalations due."""
    produced: list[tuple[Alert, AlertEventKind]] = []
    with store.transaction():
        rows = store.db.query(
            "SELECT a.*, max(e.ts_s) AS notified_s, sum(e.kind = 'escalated') AS escalations"
            " FROM alerts a JOIN alert_events e ON e.alert_id = a.id"
            " WHERE a.status IN ('open', 'resolved') AND e.kind IN (?, ?, ?) GROUP BY a.id",
            list(_NOTIFYING),
        )
        for row in list(rows):
            alert = store.alert_from_row(row)
            due = due_event(alert, row["notified_s"], bool(row["escalations"]), now_s)
            if due is None:
                continue
            kind, priority = due
            if kind is AlertEventKind.ESCALATED:
                alert = store.escalate(alert, priority, now_s, make_message)
            else:
                store.record_event(alert, kind, now_s, {}, make_message)
            produced.append((alert, kind))
    return produced
