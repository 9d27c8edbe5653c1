"""What every notification channel shares: the error that marks a failed attempt as worth another one.

A channel's sender makes one attempt per call (:meth:`~areya.notify.webhook.WebhookSender.post_once`,
:meth:`~areya.notify.email.EmailSender.send_once`); the outbox (:mod:`areya.notify.outbox`) owns the retries: it
records each attempt and schedules the next one with back-off, so no retry loop runs inside an attempt.
"""

from __future__ import annotations


class Retry(Exception):
    """A failure worth retrying (connection refused, timeout, HTTP 5xx / 408 / 429, SMTP 4xx)."""
