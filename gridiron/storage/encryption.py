"""Backups encrypted at rest: AES-256-GCM per file (`cryptography`), keys from the environment.

`GRIDIRON_BACKUP_KEY` is the key new backups are encrypted with (base64 of 32 bytes);
`GRIDIRON_BACKUP_OLD_KEYS` lists earlier keys (comma-separated), which still decrypt the backups
made with them. A backup's manifest records each key's id (the first 16 hex digits of the key's
SHA-256), never the key. An encrypted file is `nonce (12 bytes) || ciphertext || tag (16 bytes)`,
its associated data the backup's and the file's name, so a file moved to another backup or renamed
fails its tag as surely as a flipped byte does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass

KEY_VARIABLE, OLD_KEYS_VARIABLE = "GRIDIRON_BACKUP_KEY", "GRIDIRON_BACKUP_OLD_KEYS"
ALGORITHM = "AES-256-GCM"
SUFFIX = ".enc"
NONCE_BYTES = 12


class BackupKeyError(ValueError):
    """A backup key that is missing or is not base64 of 32 bytes (the message names the variable)."""


class TagMismatch(ValueError):
    """A file failed its authentication tag: it was changed since it was encrypted, or is damaged."""


@dataclass(frozen=True)
class BackupKey:
    """A 32-byte AES key and its id."""

    key: bytes

    @property
    def key_id(self) -> str:
        """What a manifest records of the key: the first 16 hex digits of its SHA-256."""
        return hashlib.sha256(self.key).hexdigest()[:16]

    def __repr__(self) -> str:  # never the key itself
        return f"BackupKey({self.key_id})"


def _decode(text: str, variable: str) -> BackupKey:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise BackupKeyError(f"{variable} is not base64 (make one with: python -c \"import os, base64; "
                        "print(base64.b64encode(os.urandom(32)).decode())\")") from None
    if len(key) != 32:
        raise BackupKeyError(f"{variable} must be base64 of 32 bytes (AES-256), not of {len(key)}")
    return BackupKey(key)


def current_key(env: Mapping[str, str] | None = None) -> BackupKey:
    """The key new backups are encrypted with; BackupKeyError naming GRIDIRON_BACKUP_KEY when unset or bad."""
    env = os.environ if env is None else env
    text = env.get(KEY_VARIABLE, "").strip()
    if not text:
        raise BackupKeyError(f"backup encryption is on but {KEY_VARIABLE} is not set (base64 of 32 bytes)")
    return _decode(text, KEY_VARIABLE)


def known_keys(env: Mapping[str, str] | None = None) -> dict[str, BackupKey]:
    """Every key this process can decrypt with, by id: the current one and the old ones."""
    env = os.environ if env is None else env
    keys = {}
    if env.get(KEY_VARIABLE, "").strip():
        key = _decode(env[KEY_VARIABLE], KEY_VARIABLE)
        keys[key.key_id] = key
    for text in env.get(OLD_KEYS_VARIABLE, "").split(","):
        if text.strip():
            key = _decode(text, OLD_KEYS_VARIABLE)
            keys[key.key_id] = key
    return keys


def _aad(backup: str, name: str) -> bytes:
    return f"gridiron-backup/{backup}/{name}".encode()


def encrypt(data: bytes, key: BackupKey, *, backup: str, name: str) -> bytes:
    """`data` encrypted for the file `name` of the backup `backup`."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key.key).encrypt(nonce, data, _aad(backup, name))


def decrypt(blob: bytes, key: BackupKey, *, backup: str, name: str) -> bytes:
    """The plain bytes of an encrypted file; TagMismatch when it fails its tag."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        return AESGCM(key.key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], _aad(backup, name))
    except (InvalidTag, ValueError):
        raise TagMismatch(f"{name} fails its authentication tag (changed since it was encrypted, or damaged)") from None
