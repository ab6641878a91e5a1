"""Local display names of patients: what the family and the village doctor call them, shown
on the box's own status page and reports. Kept only on the box (`patient_display_names`),
never put in a message: everything that leaves the box carries the pseudonymous id.

These functions take the `Store` and run on whichever thread owns it.
"""

from __future__ import annotations

from gateway.store import Store, StoreError

MAX_NAME_CHARS = 64


def display_names(store: Store) -> dict[str, str]:
    """patient id -> display name, for the patients that have one."""
    rows = store.db.execute("SELECT patient_id, display_name FROM patient_display_names")
    return {str(patient_id): str(name) for patient_id, name in rows}


def display_name(store: Store, patient_id: str) -> str | None:
    row = store.db.execute(
        "SELECT display_name FROM patient_display_names WHERE patient_id = ?", [patient_id]
    ).fetchone()
    return None if row is None else str(row[0])


def set_display_name(store: Store, patient_id: str, name: str, now_s: float) -> None:
    """Give `patient_id` a display name (1-64 printable characters)."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_CHARS or not name.isprintable():
        raise StoreError(f"a display name is 1-{MAX_NAME_CHARS} printable characters")
    if store.get_patient(patient_id) is None:
        raise StoreError(f"no patient {patient_id!r}; see `pulsegate patients list`")
    with store.transaction():
        store.db.execute(
            "INSERT INTO patient_display_names (patient_id, display_name, updated_s)"
            " VALUES (?, ?, ?) ON CONFLICT (patient_id) DO UPDATE SET"
            " display_name = excluded.display_name, updated_s = excluded.updated_s",
            [patient_id, name, now_s],
        )


def clear_display_name(store: Store, patient_id: str) -> bool:
    """Remove the display name; False if there was none."""
    with store.transaction():
        cursor = store.db.execute(
            "DELETE FROM patient_display_names WHERE patient_id = ?", [patient_id]
        )
    return bool(cursor.rowcount)
