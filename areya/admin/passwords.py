"""Password rules: at least 12 characters and not guessable (zxcvbn: common passwords, keyboard patterns,
dictionary words with digits appended, dates, repeats ... score at least 3 of 4)."""

from __future__ import annotations

from areya.errors import Invalid

MIN_PASSWORD_LEN = 12
MAX_PASSWORD_LEN = 1024
MIN_STRENGTH = 3  # zxcvbn score 0..4; 3 = "safely unguessable: moderate protection from offline attacks"
STRENGTH_CHECKED_CHARS = 100  # zxcvbn's cost grows with the length; a longer password is long enough anyway


def check_password(password: object, *, user_inputs: tuple[str, ...] = ()) -> str:
    """Return ``password`` or raise :class:`Invalid` saying why it is refused."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LEN:
        raise Invalid(f"password must be at least {MIN_PASSWORD_LEN} characters")
    if len(password) > MAX_PASSWORD_LEN:
        raise Invalid(f"password must be at most {MAX_PASSWORD_LEN} characters")
    from zxcvbn import zxcvbn

    result = zxcvbn(password[:STRENGTH_CHECKED_CHARS], user_inputs=[u for u in user_inputs if u])
    if result["score"] < MIN_STRENGTH:
        hint = (result.get("feedback") or {}).get("warning") or "it is too easy to guess"
        raise Invalid(f"password is too weak: {hint.rstrip('.')}; use a longer phrase of unrelated words")
    return password
