"""Access keys: the EC2 secret of each key and the CloudStack credentials it acts as.

Design:
- A :class:`Credential` is what the server needs to verify a request and call CloudStack on
  the caller's behalf. Secrets live in memory only as long as a request needs them (a store
  may keep an opened credential for a second, to spare back-to-back requests the
  decryptions) and are hidden from ``repr`` so that a stray log line cannot leak them.
- :class:`KeyStore` is the storage interface (async, so that a PostgreSQL backend can
  implement it later). ``ec2bridge.stores`` holds the SQLite implementation.
- :class:`SecretBox` seals secrets at rest with AES-256-GCM under a master key that comes from
  ``EC2BRIDGE_MASTER_KEY`` or a key file created with mode 0600 on first run. Each ciphertext
  is bound to its access key (associated data), so a sealed secret copied onto another row
  does not open.
"""

from __future__ import annotations

import abc
import base64
import os
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MASTER_KEY_ENV = "EC2BRIDGE_MASTER_KEY"
_SEAL_VERSION = b"\x01"


@dataclass(frozen=True)
class Credential:
    access_key: str
    secret_key: str = field(repr=False)
    cloudstack_api_key: str
    cloudstack_secret_key: str = field(repr=False)
    enabled: bool = True
    source: str = "manual"  # "manual" (ec2bridge keys add) or "cloudstack" (auto-enrolled)
    created_at: datetime | None = None
    verified_at: datetime | None = None  # when an auto-enrolled key was last confirmed


@dataclass(frozen=True)
class KeyInfo:
    """A key as ``keys list`` shows it: never a secret."""

    access_key: str
    cloudstack_api_key: str
    enabled: bool
    source: str
    created_at: datetime


class KeyExists(Exception):
    pass


class KeyNotFound(Exception):
    pass


class KeyStore(abc.ABC):
    """Where access keys live. Every change is visible to every bridge process at once."""

    @abc.abstractmethod
    async def get(self, access_key: str) -> Credential | None: ...

    @abc.abstractmethod
    async def add(self, credential: Credential) -> None:
        """Store a new key; raise :class:`KeyExists` if the access key is taken."""

    @abc.abstractmethod
    async def put(self, credential: Credential) -> None:
        """Insert or replace (auto-enrollment refreshing its cached copy)."""

    @abc.abstractmethod
    async def list(self) -> list[KeyInfo]: ...

    @abc.abstractmethod
    async def set_enabled(self, access_key: str, enabled: bool) -> None:
        """Raise :class:`KeyNotFound` for an unknown key."""

    @abc.abstractmethod
    async def delete(self, access_key: str) -> None:
        """Raise :class:`KeyNotFound` for an unknown key."""

    @abc.abstractmethod
    async def set_secret(self, access_key: str, secret_key: str) -> None:
        """Replace the EC2 secret (rotation); raise :class:`KeyNotFound` for an unknown key."""


def new_secret_key() -> str:
    """40 characters like an AWS secret access key."""
    return base64.b64encode(secrets.token_bytes(30)).decode()


def new_access_key() -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    return "AKIA" + "".join(secrets.choice(alphabet) for _ in range(16))


class SecretBox:
    """AES-256-GCM sealing of short secrets, each bound to a context string."""

    def __init__(self, master_key: bytes):
        if len(master_key) != 32:
            raise ValueError("the master key must be 32 bytes")
        self._aead = AESGCM(master_key)

    def seal(self, plaintext: str, context: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return base64.b64encode(_SEAL_VERSION + nonce + sealed).decode()

    def open(self, token: str, context: str) -> str:
        raw = base64.b64decode(token)
        if raw[:1] != _SEAL_VERSION:
            raise ValueError("unknown sealed secret version")
        return self._aead.decrypt(raw[1:13], raw[13:], context.encode()).decode()


def load_master_key(data_dir: Path, environ: dict[str, str] | None = None) -> bytes:
    """The master key from the environment, else from ``data_dir/master.key`` (made on first run)."""
    env = os.environ if environ is None else environ
    if env.get(MASTER_KEY_ENV):
        key = base64.urlsafe_b64decode(env[MASTER_KEY_ENV].encode())
        if len(key) != 32:
            raise ValueError(f"{MASTER_KEY_ENV} must be 32 bytes, base64url-encoded")
        return key
    path = Path(data_dir) / "master.key"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        _create_key_file(path)
    key = base64.urlsafe_b64decode(path.read_text().strip().encode())
    if len(key) != 32:
        raise ValueError(f"{path} does not hold a 32-byte key")
    return key


def _create_key_file(path: Path) -> None:
    """Write a new key to a private temporary file, then link it into place.

    ``link`` fails if the file exists, so when several bridge processes start at once exactly
    one key wins and nobody ever reads a half-written file.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)) + b"\n")
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(temporary)
