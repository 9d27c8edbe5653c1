"""Errors of domain operations (admin, alerts, notification outbox): one clear sentence each, safe to show to the
operator.  Below every package that raises them, so that none imports another for its errors."""

from __future__ import annotations


class AdminError(ValueError):
    """Bad input for an admin operation; nothing was changed (the caller rolls back)."""


class NotFound(AdminError):
    """A referenced ward, bed, patient, camera, zone or user does not exist."""


class Conflict(AdminError):
    """The change would break a rule: duplicate name/MRN, occupied bed, patient already in a bed, ..."""


class Invalid(AdminError):
    """A malformed value: a name, coordinates, role, URL, password."""
