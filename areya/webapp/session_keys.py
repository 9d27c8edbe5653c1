"""Names of the values the signed session cookie carries (the server-side session id and the CSRF token)."""

SESSION_ID_KEY = "sid"  # the server-side session id (areya.admin.sessions); a logged-out id resolves to nobody
