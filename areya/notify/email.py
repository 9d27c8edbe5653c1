"""E-mail notifications over SMTP to the people responsible for the alert's ward.

Recipients (active users with an e-mail address): for a patient alert, the doctors covering the ward
(role doctor in UserWard); for an operational alert (camera offline, pipeline stalled), the ward's nurses and
every admin.  Only alerts opened and escalated are mailed (acknowledgements and resolutions go to the
dashboard and webhooks).  Mails carry the ward, bed and alert id, never the patient's name.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from sqlalchemy import select
from sqlalchemy.orm import Session

from areya.notify.delivery import Retry
from areya.notify.events import AlertNotice

MAILED_EVENTS: frozenset[str] = frozenset({"alert.opened", "alert.escalated"})
PATIENT_KINDS: frozenset[str] = frozenset({"negative_emotion"})


def recipients_for(session: Session, notice: AlertNotice) -> list[str]:
    """E-mail addresses for a notice (sorted, unique; empty without a ward or addresses)."""
    from areya.db.models import User, UserWard  # noqa: PLC0415

    if notice.kind in PATIENT_KINDS:
        if notice.ward_id is None:
            return []
        query = (
            select(User.email)
            .join(UserWard, UserWard.user_id == User.id)
            .where(UserWard.ward_id == notice.ward_id, User.role == "doctor")
        )
    else:
        ward_nurses = select(UserWard.user_id).where(UserWard.ward_id == notice.ward_id)
        query = select(User.email).where((User.role == "admin") | ((User.role == "nurse") & User.id.in_(ward_nurses)))
    query = query.where(User.active.is_(True), User.email.is_not(None), User.email != "")
    return sorted({str(addr).strip() for addr in session.scalars(query) if addr and str(addr).strip()})


def build_message(
    notice: AlertNotice, recipients: list[str], sender: str, summary: str, idempotency_key: str | None = None
) -> EmailMessage:
    """The alert e-mail; with an outbox ``idempotency_key`` the Message-ID is derived from it (the same over
    retries and restarts) and the key is in the ``X-Areya-Idempotency-Key`` header."""
    title = {"alert.opened": "Alert", "alert.escalated": "ESCALATED alert"}.get(notice.type, "Alert update")
    domain = sender.rpartition("@")[2] or "areya.local"
    msg = EmailMessage()
    msg["Subject"] = f"[Areya] {title}: {summary}"
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = f"<{idempotency_key}@{domain}>" if idempotency_key else make_msgid(domain=domain)
    msg["X-Areya-Alert"] = str(notice.alert_id)
    if idempotency_key:
        msg["X-Areya-Idempotency-Key"] = idempotency_key
    lines = [
        summary,
        "",
        f"Alert:     {notice.alert_id}",
        f"Kind:      {notice.kind.replace('_', ' ')}",
        f"Severity:  {notice.severity}",
        f"State:     {notice.state}",
        f"At:        {notice.at.isoformat()}",
    ]
    if notice.note:
        lines.append(f"Detail:    {notice.note}")
    evidence = notice.extra.get("evidence") or {}
    if evidence.get("headline") and evidence["headline"] != notice.note:  # the alert's evidence, as in the inbox
        lines.append(f"Evidence:  {evidence['headline']}")
    lines += ["", "Open the Areya dashboard to acknowledge it.", "", "-- Areya (automatic message)"]
    msg.set_content("\n".join(lines))
    return msg


class EmailSender:
    """Sends a notice's message to all its recipients, one SMTP session per call (the outbox retries)."""

    def __init__(self, host: str, port: int = 25, sender: str = "areya@localhost", *, timeout_s: float = 10.0) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.timeout_s = timeout_s

    def send_once(self, message: EmailMessage, recipients: list[str]) -> int:
        """One SMTP session; returns 250, raises :class:`Retry` (4xx, connection trouble) or
        :class:`PermanentSmtpError` (5xx, refused recipients)."""
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                refused = smtp.send_message(message, from_addr=self.sender, to_addrs=recipients)
        except smtplib.SMTPRecipientsRefused as exc:
            raise PermanentSmtpError(f"all recipients refused: {sorted(exc.recipients)}") from None
        except smtplib.SMTPResponseException as exc:
            if 400 <= exc.smtp_code < 500:
                raise Retry(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from None
            raise PermanentSmtpError(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise Retry(f"{type(exc).__name__}: {exc}") from None
        if refused:
            raise PermanentSmtpError(f"recipients refused: {sorted(refused)}")
        return 250


class PermanentSmtpError(Exception):
    """A refusal that retrying will not fix (bad recipient, 5xx)."""
