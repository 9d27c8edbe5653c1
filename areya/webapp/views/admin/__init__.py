"""Admin blueprint: wards & beds, patients, cameras & bed zones, users & tokens, rule thresholds, audit log.

:data:`bp` is made in :mod:`.blueprint`; importing the section modules here registers their views on it (they
import the blueprint module, not this package, so that no section module imports its own package).
"""

from areya.webapp.views.admin import audit_log, cameras, patients, rules, users, wards  # noqa: F401
from areya.webapp.views.admin.blueprint import bp

__all__ = ["bp"]
