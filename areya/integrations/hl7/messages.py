"""An HL7 v2 ADT message (parsed by the ``hl7`` package) -> :class:`AdtEvent`, or an :class:`AdtError` saying
which segment or field is wrong (AR)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

import hl7
from hl7.datatypes import parse_datetime

from areya.integrations.hl7.errors import (
    DATA_TYPE_ERROR,
    REQUIRED_FIELD_MISSING,
    SEGMENT_SEQUENCE,
    UNSUPPORTED_EVENT,
    UNSUPPORTED_MESSAGE_TYPE,
    UNSUPPORTED_PROCESSING_ID,
    UNSUPPORTED_VERSION,
    reject,
)
from areya.integrations.hl7.locations import location_key

# trigger event -> what Areya does with it
EVENTS: dict[str, str] = {
    "A01": "admit",
    "A02": "transfer",
    "A03": "discharge",
    "A04": "register",
    "A08": "update",
    "A11": "cancel admit",
    "A12": "cancel transfer",
    "A13": "cancel discharge",
    "A34": "merge patient information (patient id only)",
    "A40": "merge patient",
    "A47": "change patient identifier",
}
MERGES = ("A34", "A40", "A47")  # MRG-1 names the prior identifier
_DTM = re.compile(r"\d{4}(\d{2}){0,5}(\.\d{1,4})?([+-]\d{4})?")  # HL7 DTM: YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]
_VERSION = re.compile(r"2\.[1-8](\.\d{1,2})?")  # HL7 v2.1 to v2.8.x (2.3.1, 2.5.1, 2.8.2, ...)
MAX_IDENTIFIER = 199  # MSH-10 is ST(199) in v2.5+; sending facility HD namespace id fits too


@dataclass(frozen=True)
class Header:
    """What an ACK needs from MSH (also for a message that is otherwise wrong)."""

    control_id: str
    sending_application: str
    sending_facility: str
    receiving_application: str
    receiving_facility: str
    trigger: str
    processing_id: str
    version: str


@dataclass(frozen=True)
class AdtEvent:
    header: Header
    event: str  # A01 ... A13
    mrn: str
    authority: str  # PID-3.4 namespace id of the MRN used ("" if none)
    name: str | None  # PID-5 as "Given Middle Family"
    location: str | None  # PV1-3 as "POC^ROOM^BED" (None if empty)
    prior_location: str | None  # PV1-6
    at: datetime  # EVN-6 / EVN-2 / MSH-7, UTC, never in the future
    prior_mrn: str | None = None  # MRG-1 of a merge (A34 / A40) or a change of identifier (A47)


def normalize(raw: str) -> str:
    """Segments separated by CR only (files and some senders use LF or CRLF), no surrounding blank space."""
    return raw.replace("\r\n", "\r").replace("\n", "\r").strip("\r\n\t ")


def fingerprint(raw: str) -> str:
    """SHA-256 (hex) of a message as Areya reads it (CR segments) without MSH-7: a resend of the same message has
    the same fingerprint even if the sender stamped it again."""
    text = normalize(raw)
    first, _, rest = text.partition("\r")
    if first.startswith("MSH") and len(first) > 3:
        fields = first.split(first[3])
        if len(fields) > 6:
            fields[6] = ""
        first = first[3].join(fields)
    return hashlib.sha256(f"{first}\r{rest}".encode()).hexdigest()


def parse_message(raw: str) -> hl7.Message:
    """Parse with the ``hl7`` package; anything it cannot read is an AR."""
    text = normalize(raw)
    if not text.startswith("MSH"):
        raise reject(SEGMENT_SEQUENCE, "message must start with an MSH segment", "MSH")
    try:
        message = hl7.parse(text)
        message.segment("MSH")
    except Exception as exc:  # noqa: BLE001 - the parser raises several kinds on garbage
        raise reject(SEGMENT_SEQUENCE, f"unreadable HL7 message: {exc}", "MSH") from None
    return message


def value(message: hl7.Message, path: str) -> str:
    """A field/component by accessor path (``PID.F3.R1.C4``); "" when absent (segment, field or component)."""
    try:
        found = message[path]
    except (IndexError, KeyError):
        return ""
    return str(found).strip() if found is not None else ""


def read_header(message: hl7.Message) -> Header:
    header = Header(
        control_id=value(message, "MSH.F10"),
        sending_application=value(message, "MSH.F3.R1.C1"),
        sending_facility=value(message, "MSH.F4.R1.C1"),
        receiving_application=value(message, "MSH.F5.R1.C1"),
        receiving_facility=value(message, "MSH.F6.R1.C1"),
        trigger=value(message, "MSH.F9.R1.C2") or value(message, "EVN.F1"),
        processing_id=value(message, "MSH.F11.R1.C1"),
        version=value(message, "MSH.F12.R1.C1"),
    )
    return header


def check_header(header: Header) -> None:
    """MSH-10 and MSH-4 are needed to apply a message once (AR if they are missing)."""
    if not header.control_id:
        raise reject(REQUIRED_FIELD_MISSING, "MSH-10 (message control id) is empty", "MSH^1^10")
    if len(header.control_id) > MAX_IDENTIFIER:
        raise reject(DATA_TYPE_ERROR, "MSH-10 (message control id) is too long", "MSH^1^10")
    if not header.sending_facility:
        raise reject(REQUIRED_FIELD_MISSING, "MSH-4 (sending facility) is empty", "MSH^1^4")
    if len(header.sending_facility) > MAX_IDENTIFIER:
        raise reject(DATA_TYPE_ERROR, "MSH-4 (sending facility) is too long", "MSH^1^4")


def supported_version(version: str) -> bool:
    return bool(_VERSION.fullmatch(version))


def version_tuple(version: str) -> tuple[int, ...]:
    """``"2.3.1"`` -> (2, 3, 1) (a supported version)."""
    return tuple(int(part) for part in version.split("."))


def check_processing(header: Header, processing_ids: tuple[str, ...]) -> None:
    """MSH-12 must be a v2 version Areya reads (2.1 to 2.8.x: AR 203) and MSH-11 a processing id it applies
    (``adt_processing_ids``, default P only: a training (T) or debugging (D) message never changes production;
    AR 202)."""
    if not supported_version(header.version):
        raise reject(
            UNSUPPORTED_VERSION,
            f"MSH-12 version {header.version!r} is not supported (HL7 v2.1 to v2.8.x)",
            "MSH^1^12",
        )
    if header.processing_id not in processing_ids:
        raise reject(
            UNSUPPORTED_PROCESSING_ID,
            f"MSH-11 processing id {header.processing_id!r} is not applied here (adt_processing_ids: "
            f"{', '.join(processing_ids)})",
            "MSH^1^11",
        )


def read_event(
    message: hl7.Message,
    header: Header,
    *,
    authority: str = "",
    identifier_type: str = "MR",
    tz: tzinfo = UTC,
    now: datetime | None = None,
) -> AdtEvent:
    """The ADT event of a message (AR when the type, event or a required segment/field is missing or wrong)."""
    message_type = value(message, "MSH.F9.R1.C1")
    if message_type != "ADT":
        raise reject(UNSUPPORTED_MESSAGE_TYPE, f"message type {message_type!r} is not ADT", "MSH^1^9")
    event = header.trigger
    if event not in EVENTS:
        raise reject(UNSUPPORTED_EVENT, f"event {event!r} is not handled (handled: {', '.join(EVENTS)})", "MSH^1^9")
    _require_segment(message, "PID")
    mrn, used_authority = _identifier(message, "PID", 3, authority, identifier_type)
    prior_mrn = None
    if event in MERGES:
        _require_segment(message, "MRG")
        prior_mrn, _ = _identifier(message, "MRG", 1, authority, identifier_type)
    return AdtEvent(
        header=header,
        event=event,
        mrn=mrn,
        authority=used_authority,
        name=_name(message),
        location=_location(message, 3),
        prior_location=_location(message, 6),
        at=_event_time(message, tz, now or datetime.now(UTC)),
        prior_mrn=prior_mrn,
    )


def _require_segment(message: hl7.Message, name: str) -> None:
    try:
        message.segment(name)
    except KeyError:
        raise reject(SEGMENT_SEQUENCE, f"required segment {name} is missing", name) from None


def _identifier(
    message: hl7.Message, segment: str, field: int, authority: str, identifier_type: str
) -> tuple[str, str]:
    """PID-3 / MRG-1 (CX, repeating) -> (identifier, its assigning authority): among the identifiers of
    ``authority`` (CX.4; empty = any), the first whose type (CX.5) is ``identifier_type`` (empty = any type); if
    none has that type, the first with no type at all (older senders leave CX.5 empty) - never one of another type
    (an SSN, a visit or account number)."""
    try:
        repetitions = len(message.segment(segment)[field])
    except IndexError:
        repetitions = 0
    untyped: tuple[str, str] | None = None
    for index in range(1, max(repetitions, 1) + 1):
        number = value(message, f"{segment}.F{field}.R{index}.C1")
        owner = value(message, f"{segment}.F{field}.R{index}.C4")
        kind = value(message, f"{segment}.F{field}.R{index}.C5")
        if not number or (authority and owner != authority):
            continue
        if not identifier_type or kind == identifier_type:
            return number, owner
        if not kind and untyped is None:
            untyped = (number, owner)
    if untyped is not None:
        return untyped
    name, where = f"{segment}-{field}", f"{segment}^1^{field}"
    wanted = [f"assigning authority {authority!r}"] if authority else []
    wanted += [f"type {identifier_type!r} (or no type)"] if identifier_type else []
    if wanted:
        raise reject(REQUIRED_FIELD_MISSING, f"{name} has no identifier of {' and '.join(wanted)}", where)
    raise reject(REQUIRED_FIELD_MISSING, f"{name} (patient identifier) is empty", where)


def _name(message: hl7.Message) -> str | None:
    family = value(message, "PID.F5.R1.C1")
    given = value(message, "PID.F5.R1.C2")
    middle = value(message, "PID.F5.R1.C3")
    name = " ".join(part for part in (given, middle, family) if part)
    return name or None


def _location(message: hl7.Message, field: int) -> str | None:
    parts = [value(message, f"PV1.F{field}.R1.C{component}") for component in (1, 2, 3)]
    return location_key(*parts) if any(parts) else None


def _event_time(message: hl7.Message, tz: tzinfo, now: datetime) -> datetime:
    for path, where in (("EVN.F6", "EVN^1^6"), ("EVN.F2", "EVN^1^2"), ("MSH.F7", "MSH^1^7")):
        text = value(message, f"{path}.R1.C1")
        if not text:
            continue
        try:
            if not _DTM.fullmatch(text):  # the hl7 parser reads a valid prefix of anything
                raise ValueError(text)
            parsed = parse_datetime(text)
        except ValueError:
            raise reject(
                DATA_TYPE_ERROR, f"{where.replace('^1^', '-')} is not an HL7 date/time: {text!r}", where
            ) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=tz)
        return min(parsed.astimezone(UTC), now)
    return now
