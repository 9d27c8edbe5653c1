"""MSH-18 (character set, HL7 table 0211) -> how a message's bytes are decoded and its ACK encoded.

The MLLP block is bytes; MSH is ASCII in every character set Areya accepts, so MSH-18 is read from the bytes before
the message is decoded. An empty MSH-18 means ``adt_default_charset``. A character set Areya does not know or
cannot carry over MLLP (UTF-16 / UTF-32: their bytes collide with the framing) is refused with AR 103 (a value not
in table 0211 as Areya has it); bytes that are not valid in the declared character set with AR 102.
"""

from __future__ import annotations

from areya.integrations.hl7.errors import DATA_TYPE_ERROR, TABLE_VALUE_NOT_FOUND, AdtError, reject

# HL7 table 0211 value -> Python codec (areya.config.HL7_CHARSETS lists the same names for adt_default_charset)
CODECS: dict[str, str] = {
    "ASCII": "ascii",
    **{f"8859/{n}": f"iso8859-{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 14, 15, 16)},
    "UNICODE UTF-8": "utf-8",
    "UNICODE": "utf-8",  # v2.5 names no encoding for it; over MLLP's byte framing only UTF-8 is possible
    "GB 18030-2000": "gb18030",
    "BIG-5": "big5",
    "KS X 1001": "euc_kr",
}
UNSUPPORTED = ("UNICODE UTF-16", "UNICODE UTF-32", "ISO IR14", "ISO IR87", "ISO IR159", "CNS 11643-1992")


def normalize(name: str) -> str:
    return " ".join(name.upper().split())


def declared(raw: bytes) -> str:
    """MSH-18's first repetition (the message's character set), "" when empty or MSH is not readable."""
    text = raw.lstrip(b"\r\n\t ")
    if not text.startswith(b"MSH") or len(text) < 8:
        return ""
    separator = text[3:4]
    first = text.split(b"\r", 1)[0].split(b"\n", 1)[0]
    fields = first.split(separator)
    if len(fields) < 18:
        return ""
    repetition = fields[1][1:2] or b"~"
    return fields[17].split(repetition, 1)[0].decode("ascii", errors="replace").strip()


def codec(charset: str) -> str:
    """The Python codec of a table 0211 value (AR 103 if Areya does not support it)."""
    name = normalize(charset)
    if name in CODECS:
        return CODECS[name]
    why = "cannot be carried over MLLP's byte framing" if name in UNSUPPORTED else "is not supported"
    supported = ", ".join(sorted(CODECS))
    raise reject(TABLE_VALUE_NOT_FOUND, f"MSH-18 character set {charset!r} {why} (supported: {supported})", "MSH^1^18")


def decode(raw: bytes, default: str) -> tuple[str, str, str]:
    """(text, codec, declared MSH-18) of a message's bytes; AR 103 / AR 102 as above."""
    charset = declared(raw)
    python_codec = codec(charset or default)
    try:
        return raw.decode(python_codec), python_codec, charset
    except UnicodeDecodeError as exc:
        where = f"MSH-18 {charset!r}" if charset else f"adt_default_charset {default!r} (MSH-18 is empty)"
        raise reject(
            DATA_TYPE_ERROR,
            f"byte {raw[exc.start]:#04x} at offset {exc.start} is not valid in the character set of {where}",
            "MSH^1^18",
        ) from None


def decode_lenient(raw: bytes) -> str:
    """For reading an ACK: by its MSH-18 if known, else UTF-8; never fails (bad bytes become U+FFFD)."""
    try:
        python_codec = codec(declared(raw) or "UNICODE UTF-8")
    except AdtError:
        python_codec = "utf-8"
    return raw.decode(python_codec, errors="replace")
