"""Secret keys by purpose, from a key file or the environment, each with a key ID.

A key file (``$BENEFITS_KEY_FILE``, JSON or TOML) holds, for each purpose, its keys by key ID
(base64 secrets) and which one is current::

    {"format": "benefits-keys/1",
     "audit_hmac":    {"current": "ah-3f9a0c12", "keys": {"ah-3f9a0c12": "base64…"}},
     "audit_signing": {"current": "as-…", "keys": {"as-…": "base64 Ed25519 private key"}},
     "blind_index":   {"current": "bi-…", "keys": {"bi-…": "base64…"}},
     "data":          {"current": "dk-…", "keys": {"dk-…": "base64 AES-256 key"}}}

A purpose may also be a plain ``{key id: secret}`` table (the last one listed is current).
An environment variable ``BENEFITS_KEY_<PURPOSE>=<key id>:<base64>`` (e.g.
``BENEFITS_KEY_AUDIT_HMAC``) adds a key and makes it current. Old keys stay in the file so
that what they protected can still be checked; the key ID is stored beside every value a key
protects. ``benefits keys init --out FILE`` writes a new key file readable by its owner only.

Example:
    >>> ring = KeyRing.generate()
    >>> kid, mac = ring.mac("blind_index", b"330106194501011233")
    >>> ring.mac_with("blind_index", kid, b"330106194501011233") == mac
    True
    >>> token = ring.seal("6222021234567890", "account_no")
    >>> token.startswith("v1:dk-"), ring.unseal(token, "account_no")
    (True, '6222021234567890')
    >>> KeyRing({}).current("audit_hmac")
    Traceback (most recent call last):
    ...
    benefits.keys.MissingKey: no audit_hmac key: set BENEFITS_KEY_FILE to a key file ...
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import tomllib
from pathlib import Path
from typing import Any

from benefits.ledger.errors import LedgerError

ENV_FILE = "BENEFITS_KEY_FILE"
ENV_PREFIX = "BENEFITS_KEY_"
FORMAT = "benefits-keys/1"
# purpose → (key ID prefix, secret length in bytes, what it is for)
PURPOSES: dict[str, tuple[str, int, str]] = {
    "audit_hmac": ("ah", 32, "HMAC-SHA256 of the audit chain"),
    "audit_signing": ("as", 32, "Ed25519 private key that signs audit checkpoints"),
    "blind_index": ("bi", 32, "HMAC-SHA256 blind index of resident IDs"),
    "data": ("dk", 32, "AES-256-GCM key of the sensitive columns of the ledger"),
}
SEALED_PREFIX = "v1"  # a sealed value is v1:<key id>:<base64 of 12-byte nonce + ciphertext + tag>


class KeyProblem(LedgerError):
    """A key file or key variable that cannot be used (the message names the purpose)."""


class MissingKey(KeyProblem):
    """No key for a purpose, or not the key ID a stored value names."""


def _decode(purpose: str, key_id: str, value: Any, source: str) -> bytes:
    length = PURPOSES[purpose][1]
    try:
        secret = base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KeyProblem(f"{purpose} key {key_id} in {source} is not base64") from exc
    if len(secret) != length:
        raise KeyProblem(
            f"{purpose} key {key_id} in {source} has {len(secret)} bytes, it needs {length}"
        )
    return secret


class SealBroken(KeyProblem):
    """A sealed value that is malformed or fails authentication (wrong key, or tampered)."""


class KeyRing:
    """Keys by purpose and key ID, and the current key ID of each purpose."""

    def __init__(
        self,
        keys: dict[str, dict[str, bytes]],
        currents: dict[str, str] | None = None,
        source: str = "no key file",
    ) -> None:
        self.keys = {p: dict(v) for p, v in keys.items()}
        self.currents = dict(currents or {})
        for purpose, table in self.keys.items():
            if table and purpose not in self.currents:
                self.currents[purpose] = list(table)[-1]
        self.source = source
        self._aead: dict[str, Any] = {}

    # -- loading ---------------------------------------------------------------------------
    @classmethod
    def generate(cls) -> KeyRing:
        """A new key ring with one random key per purpose."""
        keys, currents = {}, {}
        for purpose, (prefix, length, _) in PURPOSES.items():
            kid = f"{prefix}-{secrets.token_hex(4)}"
            keys[purpose] = {kid: secrets.token_bytes(length)}
            currents[purpose] = kid
        return cls(keys, currents, "generated")

    @classmethod
    def parse(cls, data: dict[str, Any], source: str) -> KeyRing:
        """A key ring from a parsed key file (see the module doc for the layout)."""
        keys: dict[str, dict[str, bytes]] = {}
        currents: dict[str, str] = {}
        for purpose, table in data.items():
            if purpose == "format":
                continue
            if purpose not in PURPOSES:
                raise KeyProblem(
                    f"{source} has an unknown purpose {purpose!r} (known: {', '.join(PURPOSES)})"
                )
            if not isinstance(table, dict):
                raise KeyProblem(f"{purpose} in {source} must be a table of key id → secret")
            entries = table.get("keys", table) if "keys" in table else table
            if not isinstance(entries, dict):
                raise KeyProblem(f"{purpose}.keys in {source} must be a table")
            keys[purpose] = {
                str(kid): _decode(purpose, str(kid), value, source)
                for kid, value in entries.items()
                if kid != "current"
            }
            current = table.get("current")
            if current is not None:
                if str(current) not in keys[purpose]:
                    raise MissingKey(
                        f"{purpose} in {source} names current key {current} but does not hold it"
                    )
                currents[purpose] = str(current)
        return cls(keys, currents, source)

    @classmethod
    def load(cls, path: Path) -> KeyRing:
        """Read a JSON or TOML key file."""
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise KeyProblem(f"cannot read the key file {path}: {exc.strerror}") from exc
        try:
            if path.suffix.lower() == ".toml":
                data = tomllib.loads(raw.decode("utf-8"))
            else:
                data = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise KeyProblem(f"the key file {path} is not valid JSON or TOML: {exc}") from exc
        if not isinstance(data, dict):
            raise KeyProblem(f"the key file {path} must hold a table of purposes")
        return cls.parse(data, str(path))

    @classmethod
    def from_env(
        cls, environ: dict[str, str] | None = None, fallback: Path | None = None
    ) -> KeyRing:
        """``$BENEFITS_KEY_FILE`` (else `fallback` if it exists) plus ``BENEFITS_KEY_*``."""
        env = os.environ if environ is None else environ
        path = env.get(ENV_FILE, "").strip()
        if path:
            ring = cls.load(Path(path))
        elif fallback is not None and fallback.exists():
            ring = cls.load(fallback)
        else:
            ring = cls({})
        for purpose in PURPOSES:
            name = ENV_PREFIX + purpose.upper()
            value = env.get(name, "").strip()
            if not value:
                continue
            kid, sep, secret = value.partition(":")
            if not sep or not kid:
                raise KeyProblem(f"{name} must be <key id>:<base64 secret>")
            ring.keys.setdefault(purpose, {})[kid] = _decode(purpose, kid, secret, name)
            ring.currents[purpose] = kid
        return ring

    def to_json(self) -> str:
        """The key file text (JSON) of this ring."""
        data: dict[str, Any] = {"format": FORMAT}
        for purpose, table in self.keys.items():
            data[purpose] = {
                "current": self.currents[purpose],
                "keys": {k: base64.b64encode(v).decode("ascii") for k, v in table.items()},
            }
        return json.dumps(data, indent=2) + "\n"

    def write(self, path: Path) -> None:
        """Write the key file, readable and writable by its owner only (mode 0600)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(self.to_json())
        os.chmod(path, 0o600)

    def add(self, purpose: str) -> str:
        """Add a new random key for `purpose`, make it current; return its key ID."""
        prefix, length, _ = PURPOSES[purpose]
        kid = f"{prefix}-{secrets.token_hex(4)}"
        self.keys.setdefault(purpose, {})[kid] = secrets.token_bytes(length)
        self.currents[purpose] = kid
        return kid

    def replace_file(self, path: Path) -> None:
        """Rewrite the key file `path` whole (temporary file mode 0600, then rename)."""
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        self.write(tmp)
        os.replace(tmp, path)

    # -- use -------------------------------------------------------------------------------
    def _missing(self, purpose: str) -> MissingKey:
        return MissingKey(
            f"no {purpose} key: set {ENV_FILE} to a key file (benefits keys init --out FILE) "
            f"or {ENV_PREFIX}{purpose.upper()}=<key id>:<base64>"
        )

    def current(self, purpose: str) -> tuple[str, bytes]:
        """(key ID, secret) of the purpose's current key, or MissingKey."""
        kid = self.currents.get(purpose)
        if kid is None or kid not in self.keys.get(purpose, {}):
            raise self._missing(purpose)
        return kid, self.keys[purpose][kid]

    def get(self, purpose: str, key_id: str) -> bytes:
        """The secret with this key ID, or MissingKey naming purpose and ID."""
        secret = self.keys.get(purpose, {}).get(key_id)
        if secret is None:
            if not self.keys.get(purpose):
                raise self._missing(purpose)
            raise MissingKey(f"no {purpose} key with id {key_id} in {self.source}")
        return secret

    def has(self, purpose: str) -> bool:
        """True when the purpose has a current key."""
        return self.currents.get(purpose) in self.keys.get(purpose, {})

    def mac(self, purpose: str, message: bytes) -> tuple[str, str]:
        """(key ID, hex HMAC-SHA256) of `message` under the purpose's current key."""
        kid, secret = self.current(purpose)
        return kid, hmac.new(secret, message, hashlib.sha256).hexdigest()

    def mac_with(self, purpose: str, key_id: str, message: bytes) -> str:
        """Hex HMAC-SHA256 of `message` under the key `key_id`."""
        return hmac.new(self.get(purpose, key_id), message, hashlib.sha256).hexdigest()

    def blind_index(self, value: str, length: int = 32) -> tuple[str, str]:
        """(key ID, keyed blind index) of a value such as a resident ID (hex, `length` chars).

        Without the ``blind_index`` key the index cannot be recomputed, so a short list of
        candidates (every birth date) no longer reveals the value.
        """
        kid, mac = self.mac("blind_index", value.encode("utf-8"))
        return kid, mac[:length]

    def _cipher(self, key_id: str) -> Any:
        aead = self._aead.get(key_id)
        if aead is None:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            aead = self._aead[key_id] = AESGCM(self.get("data", key_id))
        return aead

    def seal(self, value: str, context: str) -> str:
        """`value` encrypted (AES-256-GCM, random nonce) under the current ``data`` key:
        ``v1:<key id>:<base64>``. `context` (e.g. the column's kind, ``account_no``) is
        authenticated with it, so a value cannot be moved to a column of another kind."""
        kid, _ = self.current("data")
        nonce = secrets.token_bytes(12)
        sealed = self._cipher(kid).encrypt(nonce, value.encode("utf-8"), context.encode())
        return f"{SEALED_PREFIX}:{kid}:{base64.b64encode(nonce + sealed).decode('ascii')}"

    def unseal(self, token: str, context: str) -> str:
        """The clear value of a sealed `token` (any ``data`` key the ring holds); SealBroken
        when it is malformed or does not authenticate, MissingKey when its key is gone."""
        from cryptography.exceptions import InvalidTag

        prefix, _, rest = token.partition(":")
        kid, _, body = rest.partition(":")
        if prefix != SEALED_PREFIX or not kid or not body:
            raise SealBroken(
                f"a sealed {context} column holds a value that is not sealed (v1:<key id>:…)"
            )
        try:
            raw = base64.b64decode(body, validate=True)
            return self._cipher(kid).decrypt(raw[:12], raw[12:], context.encode()).decode()
        except (binascii.Error, ValueError, InvalidTag) as exc:
            raise SealBroken(
                f"a {context} value sealed with data key {kid} does not authenticate "
                "(wrong key or altered in the database)"
            ) from exc

    @staticmethod
    def sealed_key_id(token: str) -> str | None:
        """The key ID a sealed value names (None for a value that is not sealed)."""
        prefix, _, rest = token.partition(":")
        kid, sep, _ = rest.partition(":")
        return kid if prefix == SEALED_PREFIX and sep else None

    def signing_key(self, key_id: str | None = None) -> tuple[str, Any]:
        """(key ID, Ed25519 private key) for signing checkpoints."""
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        if key_id is None:
            key_id, secret = self.current("audit_signing")
        else:
            secret = self.get("audit_signing", key_id)
        return key_id, Ed25519PrivateKey.from_private_bytes(secret)


def public_key_b64(private: Any) -> str:
    """The raw Ed25519 public key of a private key, base64."""
    from cryptography.hazmat.primitives import serialization

    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return base64.b64encode(raw).decode("ascii")


def dev_key_file(url: str) -> Path | None:
    """The development key file beside a SQLite ledger file (``<db>.keys.json``), else None.

    >>> dev_key_file("sqlite:////srv/ledger.sqlite")
    PosixPath('/srv/ledger.sqlite.keys.json')
    >>> dev_key_file("postgresql+psycopg://u@h/db") is None
    True
    """
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(str(parsed.database)).with_name(Path(str(parsed.database)).name + ".keys.json")


def ledger_keys(url: str, *, create: bool = False) -> KeyRing:
    """The keys of the ledger at `url`: ``$BENEFITS_KEY_FILE`` / ``BENEFITS_KEY_*``, else the
    development key file beside a SQLite ledger (written, mode 0600, when `create` is true).

    A PostgreSQL ledger has no default: without a key file every keyed action fails with
    :class:`MissingKey`.
    """
    fallback = None if os.environ.get(ENV_FILE, "").strip() else dev_key_file(url)
    if create and fallback is not None and fallback.exists():
        _add_missing_purposes(fallback)
    if create and fallback is not None and not fallback.exists():
        try:
            KeyRing.generate().write(fallback)
        except FileExistsError:  # another process wrote it first: use theirs
            pass
        except OSError as exc:
            raise KeyProblem(f"cannot write the key file {fallback}: {exc.strerror}") from exc
    ring = KeyRing.from_env(fallback=fallback)
    global _LAST_LEDGER_RING
    _LAST_LEDGER_RING = ring
    return ring


_LAST_LEDGER_RING: KeyRing | None = None


def last_ledger_keys() -> KeyRing | None:
    """The key ring :func:`ledger_keys` gave last in this process (the sealed files of a
    development ledger use its key file when no key file is named), else None."""
    return _LAST_LEDGER_RING


def _add_missing_purposes(path: Path) -> None:
    """Give a development key file written by an older version keys for new purposes
    (e.g. ``data``), keeping every key it holds; written whole (temporary file, rename)."""
    ring = KeyRing.load(path)
    fresh = KeyRing.generate()
    missing = [p for p in PURPOSES if not ring.has(p)]
    if not missing:
        return
    for purpose in missing:
        ring.keys[purpose] = fresh.keys[purpose]
        ring.currents[purpose] = fresh.currents[purpose]
    ring.replace_file(path)
