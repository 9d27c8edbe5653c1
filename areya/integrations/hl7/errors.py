"""Why a message was not applied: the ACK code (AR reject / AE error) and HL7 table 0357 error code."""

from __future__ import annotations

# HL7 table 0357 (message error condition codes)
SEGMENT_SEQUENCE = "100"
REQUIRED_FIELD_MISSING = "101"
DATA_TYPE_ERROR = "102"
TABLE_VALUE_NOT_FOUND = "103"
UNSUPPORTED_MESSAGE_TYPE = "200"
UNSUPPORTED_EVENT = "201"
UNSUPPORTED_PROCESSING_ID = "202"
UNSUPPORTED_VERSION = "203"
UNKNOWN_KEY = "204"
DUPLICATE_KEY = "205"
INTERNAL_ERROR = "207"

ERROR_TEXT = {
    SEGMENT_SEQUENCE: "Segment sequence error",
    REQUIRED_FIELD_MISSING: "Required field missing",
    DATA_TYPE_ERROR: "Data type error",
    TABLE_VALUE_NOT_FOUND: "Table value not found",
    UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type",
    UNSUPPORTED_EVENT: "Unsupported event code",
    UNSUPPORTED_PROCESSING_ID: "Unsupported processing id",
    UNSUPPORTED_VERSION: "Unsupported version id",
    UNKNOWN_KEY: "Unknown key identifier",
    DUPLICATE_KEY: "Duplicate key identifier",
    INTERNAL_ERROR: "Application internal error",
}


class AdtError(Exception):
    """A message that is not applied: ``ack_code`` AR (malformed / unsupported) or AE (cannot be applied now)."""

    def __init__(self, ack_code: str, error_code: str, text: str, location: str = "") -> None:
        super().__init__(text)
        self.ack_code = ack_code
        self.error_code = error_code
        self.text = text
        self.location = location  # ERR-2, e.g. "PV1^1^3" (segment^sequence^field)


def reject(error_code: str, text: str, location: str = "") -> AdtError:
    """AR: the message itself is wrong (malformed, missing a required field, unsupported)."""
    return AdtError("AR", error_code, text, location)


def error(error_code: str, text: str, location: str = "") -> AdtError:
    """AE: a well-formed message that cannot be applied (unknown bed or patient, occupied bed, out of order)."""
    return AdtError("AE", error_code, text, location)
