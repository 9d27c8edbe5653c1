"""The ACK answering each message: MSH + MSA (AA / AE / AR) + ERR when it was not applied (HL7 v2.5 ERR-2/3/4/8)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from areya.integrations.hl7.errors import ERROR_TEXT, AdtError
from areya.integrations.hl7.messages import Header, supported_version

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
) -> str:
    """An ACK for ``header`` (None: MSH itself was unreadable, MSA-2 stays empty); segments joined by CR.
    ``charset``: the message's MSH-18, repeated in the ACK's (which is written in it)."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S")
    h = header
    msh = "|".join(
        [
            "MSH",
            "^~\\&",
            APPLICATION,
            escape(h.receiving_facility) if h else "",
            escape(h.sending_application) if h else "",
            escape(h.sending_facility) if h else "",
            stamp,
            "",
            f"ACK^{escape(h.trigger) if h else ''}^ACK",
            f"ACK{secrets.token_hex(8).upper()}",
            escape(h.processing_id) if h and h.processing_id else "P",
            escape(h.version) if h and supported_version(h.version) else "2.5",
            *(["", "", "", "", "", escape(charset)] if charset else []),
        ]
    )
    msa = "|".join(["MSA", code, escape(h.control_id) if h else "", escape(text[:80])])
    segments = [msh, msa]
    if failure is not None:
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
