"""Password rules: at least 12 characters and not guessable (zxcvbn: common passwords, keyboard patterns,
dictionary words with digits appended, dates, repeats ... score at least 3 of 4), and not one word padded with a
year, digits or symbols (``Summer2026!!``, ``Nurse2026!!!``: zxcvbn scores them 3, yet a season, a month, the
user's name or role, a ward or "areya" followed by the year is among an attacker's first guesses)."""

from __future__ import annotations

import re

from areya.errors import Invalid

MIN_PASSWORD_LEN = 12
MAX_PASSWORD_LEN = 1024
MIN_STRENGTH = 3  # zxcvbn score 0..4; 3 = "safely unguessable: moderate protection from offline attacks"
STRENGTH_CHECKED_CHARS = 72  # zxcvbn refuses longer input (ValueError); a longer password is long enough anyway


def check_password(password: object, *, user_inputs: tuple[str, ...] = ()) -> str:
    """Return ``password`` or raise :class:`Invalid` saying why it is refused."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LEN:
        raise Invalid(f"password must be at least {MIN_PASSWORD_LEN} characters")
    if len(password) > MAX_PASSWORD_LEN:
        raise Invalid(f"password must be at most {MAX_PASSWORD_LEN} characters")
    from zxcvbn import zxcvbn

    inputs = _inputs(user_inputs)
    result = zxcvbn(password[:STRENGTH_CHECKED_CHARS], user_inputs=inputs)
    if result["score"] < MIN_STRENGTH:
        hint = (result.get("feedback") or {}).get("warning") or "it is too easy to guess"
        raise Invalid(f"password is too weak: {hint.rstrip('.')}; use a longer phrase of unrelated words")
    padded = _padded_word(password, inputs)
    if padded:
        raise Invalid(f"password is too weak: {padded}; use a longer phrase of unrelated words")
    return password


SEASONS_AND_MONTHS = frozenset(
    [
        "spring",
        "summer",
        "autumn",
        "fall",
        "winter",
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
    ]
)
YEAR_RE = re.compile(r"(?<!\d)(19\d\d|20\d\d)(?!\d)")


def _inputs(user_inputs: tuple[str, ...]) -> list[str]:
    """The user's own words (name, role, wards, "areya"): whole and split into their words."""
    out: list[str] = []
    for value in user_inputs:
        if value:
            out.append(value.lower())
            out.extend(w.lower() for w in re.findall(r"[A-Za-z]{3,}", value))
    return list(dict.fromkeys(out))


def _padded_word(password: str, inputs: list[str]) -> str | None:
    """Why the password is one word with a year, digits or symbols around it, or None."""
    runs = re.findall(r"[A-Za-z]+", password)
    if len(runs) != 1:
        return None
    word = runs[0].lower()
    year = YEAR_RE.search(password) is not None
    if word in SEASONS_AND_MONTHS and year:
        return "a season or month with a year (like Summer2026!!) is among the first guesses"
    if word in inputs:
        return (
            "it is your name, role, a ward or 'areya' with "
            + ("a year" if year else "digits or symbols")
            + " added, among the first guesses"
        )
    if year and _dictionary_word(word, inputs):
        return "a single word with a year added (like Password2026!) is among the first guesses"
    return None


def _dictionary_word(word: str, inputs: list[str]) -> bool:
    from zxcvbn import zxcvbn

    sequence = zxcvbn(word[:STRENGTH_CHECKED_CHARS], user_inputs=inputs)["sequence"]
    return len(sequence) == 1 and sequence[0].get("pattern") == "dictionary"
