"""Attention alerts: rules (pure), lifecycle (shared with the web app), the scheduler and its leader lock.

Heavy or optional parts (APScheduler) are imported only where used.
"""

from areya.alerts.errors import Forbidden
from areya.alerts.lifecycle import (
    acknowledge_alert,
    active_snooze,
    alert_history,
    cancel_snoozes,
    get_alert,
    list_alerts,
    open_alert,
    pending_notices,
    resolve_alert,
    snooze_patient,
    take_notices,
)
from areya.alerts.overrides import OverrideResolver, clear_rule_override, set_rule_override
from areya.alerts.rules import RuleParams, WindowStats, evaluate_negative

__all__ = [
    "Forbidden",
    "OverrideResolver",
    "RuleParams",
    "WindowStats",
    "acknowledge_alert",
    "active_snooze",
    "alert_history",
    "cancel_snoozes",
    "clear_rule_override",
    "evaluate_negative",
    "get_alert",
    "list_alerts",
    "open_alert",
    "pending_notices",
    "resolve_alert",
    "set_rule_override",
    "snooze_patient",
    "take_notices",
]
