"""The ACK answering each message: MSH + MSA (AA / AE / AR) + ERR when it was not applied (HL7 v2.5 ERR-2/3/4/8)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from areya.integrations.hl7.errors import ERROR_TEXT, AdtError
from areya.integrations.hl7.messages import Header, supported_version, version_tuple

APPLICATION = "AREYA"
_ESCAPES = (("\\", "\\E\\"), ("|", "\\F\\"), ("^", "\\S\\"), ("&", "\\T\\"), ("~", "\\R\\"), ("\r", " "), ("\n", " "))


def escape(text: str) -> str:
    """Text safe inside one HL7 component (default delimiters)."""
    for plain, escaped in _ESCAPES:
        text = text.replace(plain, escaped)
    return text


def build_ack(
    header: Header | None,
    code: str,
    text: str = "",
    failure: AdtError | None = None,
    *,
    now: datetime | None = None,
    charset: str = "",
    application: str = APPLICATION,
) -> str:
    """An ACK for ``header`` (None: MSH itself was unreadable, MSA-2 stays empty); segments joined by CR.
    ``charset``: the message's MSH-18, repeated in the ACK's (which is written in it); ``application``: MSH-3
    (``adt_ack_application``). Written in the message's version (2.5 when that is not one Areya reads): MSH-9 has
    one component in 2.1, two (ACK^event) in 2.2 to 2.3, three (ACK^event^ACK) from 2.3.1; ERR is ERR-1 (segment^
    sequence^field^code&text&HL70357) before 2.5 and ERR-2/3/4/8 from 2.5."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S")
    h = header
    version = h.version if h and supported_version(h.version) else "2.5"
    level = version_tuple(version)
    trigger = escape(h.trigger) if h else ""
    if level < (2, 2):
        message_type = "ACK"
    elif level < (2, 3, 1):
        message_type = f"ACK^{trigger}"
    else:
        message_type = f"ACK^{trigger}^ACK"
    msh = "|".join(
        [
            "MSH",
            "^~\\&",
            escape(application),
            escape(h.receiving_facility) if h else "",
            escape(h.sending_application) if h else "",
            escape(h.sending_facility) if h else "",
            stamp,
            "",
            message_type,
            f"ACK{secrets.token_hex(8).upper()}",
            escape(h.processing_id) if h and h.processing_id else "P",
            escape(version),
            *(["", "", "", "", "", escape(charset)] if charset else []),
        ]
    )
    msa_text = escape(text[:80]) if level < (2, 7) else ""  # MSA-3 is withdrawn from 2.7 (ERR-8 says why)
    msa = "|".join(["MSA", code, escape(h.control_id) if h else "", msa_text]).rstrip("|")
    segments = [msh, msa]
    if failure is not None and level < (2, 5):
        segment, _, rest = failure.location.partition("^")
        sequence, _, position = rest.partition("^")
        meaning = escape(ERROR_TEXT.get(failure.error_code, ""))
        segments.append(f"ERR|{segment}^{sequence}^{position}^{failure.error_code}&{meaning}&HL70357")
    elif failure is not None:
        severity = "E"
        err = "|".join(
            [
                "ERR",
                "",
                failure.location,  # ours: segment^sequence^field
                f"{failure.error_code}^{escape(ERROR_TEXT.get(failure.error_code, ''))}^HL70357",
                severity,
                "",
                "",
                "",
                escape(failure.text[:250]),
            ]
        )
        segments.append(err)
    return "\r".join(segments)
