"""`pulsegate contacts`: who is told of a patient's alerts by SMS (add, list, remove), and
`pulsegate notifications ALERT`: every attempt to tell them about one alert, with its outcome.
Phone numbers are shown masked (138****5678); they never leave the box."""

from __future__ import annotations

import json
import time

import click

from alerts.escalation import LADDER, Language, Role
from gateway.cli_errors import EXIT_USAGE, fail
from gateway.cli_store import open_store
from gateway.contacts import add_contact, attempt_rows, list_contacts, remove_contact
from gateway.sms_text import PhoneError, mask_phone
from gateway.store import StoreError


@click.group()
def contacts() -> None:
    """Contacts per patient for SMS escalation: family, village doctor, township doctor."""


@contacts.command("add")
@click.argument("patient_id")
@click.option(
    "--role",
    type=click.Choice([r.value for r in Role]),
    required=True,
    help="family (told first), doctor (the village doctor), township (the township doctor).",
)
@click.option("--name", required=True, help="Who it is, e.g. 'Li Na (daughter)'.")
@click.option("--phone", required=True, help="Mobile number, e.g. 13812345678 or +8613812345678.")
@click.option(
    "--language",
    type=click.Choice([lang.value for lang in Language]),
    default=Language.ZH.value,
    show_default=True,
    help="Language of the SMS this contact gets.",
)
@click.pass_context
def contacts_add(
    ctx: click.Context, patient_id: str, role: str, name: str, phone: str, language: str
) -> None:
    """Add a contact to PATIENT_ID."""
    with open_store(ctx) as store:
        try:
            contact = add_contact(
                store, patient_id, Role(role), name, phone, Language(language), time.time()
            )
        except PhoneError as exc:
            fail(str(exc), EXIT_USAGE)
    click.echo(
        f"added contact {contact.id}: {contact.role} {contact.name} "
        f"{mask_phone(contact.phone)} ({contact.language}) for {patient_id}"
    )


@contacts.command("list")
@click.argument("patient_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (numbers masked).")
@click.pass_context
def contacts_list(ctx: click.Context, patient_id: str | None, as_json: bool) -> None:
    """List contacts (of PATIENT_ID, or of every patient), in ladder order."""
    with open_store(ctx) as store:
        rows = list_contacts(store, patient_id)
    for contact in rows:
        fields = {
            "id": contact.id,
            "patient_id": contact.patient_id,
            "role": contact.role.value,
            "name": contact.name,
            "phone": mask_phone(contact.phone),
            "language": contact.language.value,
        }
        if as_json:
            click.echo(json.dumps(fields, ensure_ascii=False))
        else:
            click.echo(
                f"  {contact.id:>4}  {contact.patient_id:<20} {contact.role:<9} "
                f"{fields['phone']:<15} {contact.language}  {contact.name}"
            )
    if not rows and not as_json:
        click.echo("no contacts; add one with `pulsegate contacts add PATIENT --role ...`")


@contacts.command("remove")
@click.argument("contact_id", type=int)
@click.pass_context
def contacts_remove(ctx: click.Context, contact_id: int) -> None:
    """Remove a contact (by the number `contacts list` shows)."""
    with open_store(ctx) as store:
        contact = remove_contact(store, contact_id)
    click.echo(f"removed contact {contact.id} ({contact.role} of {contact.patient_id})")


@contacts.command("ladder")
def contacts_ladder() -> None:
    """Print the escalation ladder: who is told when, by priority and tier."""
    for (priority, tier), steps in LADDER.items():
        rungs = ", ".join(
            f"{'at once' if step.after_s == 0 else f'after {step.after_s / 60:g} min'}: "
            + " + ".join(role.value for role in step.roles)
            for step in steps
        )
        click.echo(f"  {priority:<6} {tier:<6} {rungs}")


@click.command()
@click.argument("alert_ref")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def notifications(ctx: click.Context, alert_ref: str, as_json: bool) -> None:
    """Every SMS attempt for one alert (by id, or its first 6+ characters), oldest first."""
    if len(alert_ref) < 6:
        fail("give at least the first 6 characters of the alert id", EXIT_USAGE)
    with open_store(ctx) as store:
        ids = [
            row[0]
            for row in store.db.execute(
                "SELECT id FROM alerts WHERE id LIKE ? || '%'", [alert_ref]
            ).fetchall()
        ]
        if len(ids) != 1:
            raise StoreError(
                f"no alert {alert_ref!r}; see `pulsegate alerts`"
                if not ids
                else f"{alert_ref!r} matches {len(ids)} alerts; give more of the id"
            )
        rows = attempt_rows(store, ids[0])
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False))
        return
    if not rows:
        click.echo(f"no SMS attempts for alert {ids[0]}")
    for row in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(row["ts_s"]))
        result = (
            f"sent, reference {row['message_ref']}"
            if row["outcome"] == "sent"
            else f"{row['outcome']}" + (f": {row['reason']}" if row["reason"] else "")
        )
        click.echo(
            f"  {when} UTC  {row['priority']:<6} level {row['step'] + 1} try {row['attempt']}  "
            f"{row['role']:<9} {row['phone_masked']:<15} {result}"
        )
