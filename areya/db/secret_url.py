"""Camera source URLs encrypted at rest.

A network camera URL (``rtsp://``, ``rtsps://``, ``http://``, ``https://``) may carry a user name and password (in
its user info or its query string), so the database stores it as ``areya-enc-v1:<Fernet token>``: AES-128-CBC
with an HMAC-SHA256 tag (``cryptography``'s Fernet), under a key derived from the secret key with HKDF-SHA256.
Files, devices and the synthetic camera carry no credentials and are stored as given.

:class:`SecretUrl` (the type of ``Camera.source_url``) encrypts when writing and decrypts when reading, with the
cipher :func:`attach_cipher` put on the engine's dialect (``create_db_engine(settings)`` does it), so the rest of
the code sees plain URLs. Rows written in plain text by earlier versions are read as they are (migration 0004
encrypts them). A value that cannot be decrypted (the secret key changed) is returned as stored: it is shown as
unreadable and a camera opened with it fails with a message saying to set the URL again.
"""

from __future__ import annotations

import base64
import logging
from functools import lru_cache
from typing import Any

from sqlalchemy import Text
from sqlalchemy.types import TypeDecorator

from areya.source_url import ENCRYPTED_PREFIX, NETWORK_SCHEMES

log = logging.getLogger(__name__)

CIPHER_ATTR = "areya_url_cipher"
_HKDF_SALT = b"areya"
_HKDF_INFO = b"areya camera source URLs v1"


class MissingKeyError(RuntimeError):
    """A network camera URL was written through an engine without a cipher (create it from the settings)."""


def carries_credentials(url: str) -> bool:
    """True for network URLs, the only camera URLs that can hold credentials."""
    scheme, sep, _rest = url.partition("://")
    return bool(sep) and scheme.lower() in NETWORK_SCHEMES


def is_encrypted(value: str) -> bool:
    return value.startswith(ENCRYPTED_PREFIX)


@lru_cache(maxsize=8)
def derive_key(secret_key: str) -> bytes:
    """The Fernet key (url-safe base64 of 32 bytes) for camera URLs, derived from the application secret key."""
    from cryptography.hazmat.primitives import hashes  # noqa: PLC0415 - only where the database is used
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF  # noqa: PLC0415

    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=_HKDF_INFO).derive(
        secret_key.encode("utf-8")
    )
    return base64.urlsafe_b64encode(raw)


class UrlCipher:
    """Encrypts and decrypts camera URLs under one secret key."""

    def __init__(self, secret_key: str) -> None:
        from cryptography.fernet import Fernet  # noqa: PLC0415

        if not secret_key:
            raise ValueError("a secret key is required to encrypt camera URLs")
        self._fernet = Fernet(derive_key(secret_key))

    def seal(self, url: str) -> str:
        """The stored form of ``url`` (network URLs encrypted; others, and already sealed values, unchanged)."""
        if is_encrypted(url) or not carries_credentials(url):
            return url
        return ENCRYPTED_PREFIX + self._fernet.encrypt(url.encode("utf-8")).decode("ascii")

    def open(self, stored: str) -> str:
        """The URL from its stored form; raises ``cryptography.fernet.InvalidToken`` if the key does not fit."""
        if not is_encrypted(stored):
            return stored  # plain text: a row written before encryption (migration 0004 seals it)
        return self._fernet.decrypt(stored[len(ENCRYPTED_PREFIX) :].encode("ascii")).decode("utf-8")


def attach_cipher(engine: Any, secret_key: str) -> None:
    """Encrypt and decrypt ``Camera.source_url`` on this engine with a key derived from ``secret_key``."""
    setattr(engine.dialect, CIPHER_ATTR, UrlCipher(secret_key))


def cipher_of(dialect: Any) -> UrlCipher | None:
    return getattr(dialect, CIPHER_ATTR, None)


def seal_url(url: str, cipher: UrlCipher | None) -> str:
    if cipher is None:
        if carries_credentials(url) and not is_encrypted(url):
            raise MissingKeyError(
                "camera URLs are stored encrypted: create the engine with "
                "create_db_engine(settings) (it needs the secret key)"
            )
        return url
    return cipher.seal(url)


def open_url(stored: str, cipher: UrlCipher | None) -> str:
    if not is_encrypted(stored):
        return stored
    if cipher is None:
        return stored
    from cryptography.fernet import InvalidToken  # noqa: PLC0415

    try:
        return cipher.open(stored)
    except InvalidToken:
        log.warning("a camera URL cannot be decrypted with this secret key (was it changed?): set the URL again")
        return stored


class SecretUrl(TypeDecorator[str]):
    """Text column holding a camera URL, encrypted at rest when it can carry credentials (see the module)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else seal_url(value, cipher_of(dialect))

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else open_url(value, cipher_of(dialect))
