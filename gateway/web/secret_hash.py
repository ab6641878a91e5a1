"""Hashes of the status page's PIN and of the hub staff's passwords: scrypt with a random salt,
kept as one text `scrypt$<n>$<r>$<p>$<salt hex>$<hash hex>` (so the cost can be raised later
without invalidating the stored hashes), compared in constant time.

Pure: no I/O. hashlib.scrypt needs OpenSSL 1.1+, which every supported Debian has.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

SCHEME = "scrypt"
# 2**14 x 8 x 128 B = 16 MiB and about 0.1 s on a Raspberry Pi 4: cheap for one form post,
# expensive for guessing. The wrong-PIN rate limit does the rest (a PIN is short).
DEFAULT_N = 2**14
DEFAULT_R = 8
DEFAULT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
MAX_N = 2**20
MAX_SECRET_CHARS = 256


class HashFormatError(ValueError):
    """A stored hash that is not `scrypt$n$r$p$salt$hash`."""


@dataclass(frozen=True, slots=True)
class ScryptHash:
    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes

    def encode(self) -> str:
        return f"{SCHEME}${self.n}${self.r}${self.p}${self.salt.hex()}${self.digest.hex()}"


def _derive(secret: str, n: int, r: int, p: int, salt: bytes, length: int) -> bytes:
    return hashlib.scrypt(
        secret.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r + 2**20, dklen=length
    )


def hash_secret(secret: str, *, n: int = DEFAULT_N, r: int = DEFAULT_R, p: int = DEFAULT_P) -> str:
    """The encoded scrypt hash of `secret` with a fresh random salt."""
    salt = secrets.token_bytes(SALT_BYTES)
    return ScryptHash(n, r, p, salt, _derive(secret, n, r, p, salt, HASH_BYTES)).encode()


def parse_hash(encoded: str) -> ScryptHash:
    """Split and check an encoded hash; HashFormatError says what is wrong."""
    parts = encoded.strip().split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        raise HashFormatError("expected scrypt$N$R$P$SALT$HASH (made by `pulsegate web hash-pin`)")
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, digest = bytes.fromhex(parts[4]), bytes.fromhex(parts[5])
    except ValueError:
        raise HashFormatError("N, R, P must be integers and SALT, HASH hexadecimal") from None
    if n < 2 or n > MAX_N or n & (n - 1) or not 1 <= r <= 64 or not 1 <= p <= 16:
        raise HashFormatError(f"scrypt parameters n={n} r={r} p={p} are out of range")
    if len(salt) < 8 or len(digest) < 16:
        raise HashFormatError("the salt or the hash is too short")
    return ScryptHash(n, r, p, salt, digest)


def verify_secret(secret: str, encoded: str) -> bool:
    """True when `secret` hashes to `encoded` (compared with hmac.compare_digest)."""
    stored = parse_hash(encoded)
    if len(secret) > MAX_SECRET_CHARS:
        return False
    candidate = _derive(secret, stored.n, stored.r, stored.p, stored.salt, len(stored.digest))
    return hmac.compare_digest(candidate, stored.digest)
