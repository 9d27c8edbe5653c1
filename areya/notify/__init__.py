"""Alert notifications: Redis pub/sub events (for server-sent events), signed webhooks, SMTP e-mail."""

from areya.notify.events import CHANNEL, EVENT_KEYS, EVENT_TYPES, AlertNotice, iter_events, publish_events

__all__ = ["CHANNEL", "EVENT_KEYS", "EVENT_TYPES", "AlertNotice", "iter_events", "publish_events"]
