"""Cookie-refresh helpers: correspondPath (RSA-OAEP-SHA256) and the refresh_csrf HTML parser."""

from __future__ import annotations

import re
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

BILIBILI_PUBLIC_KEY_PEM = b"""-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDLgd2OAkcGVtoE3ThUREbio0Eg
Uc/prcajMKXvkCKFCWhJYJcLkcM2DKKcSeFpD/j6Boy538YXnR6VhcuUJOhH2x71
nzPjfdTcqMz7djHum0qSZA0AyCBDABUqCrfNgCiJ00Ra7GmRj+YCK1NJEuewlb40
JNrRuoEUXpabUzGB8QIDAQAB
-----END PUBLIC KEY-----
"""

OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
_CSRF_RE = re.compile(r'<div id="1-name">(.+?)</div>')


def correspond_path(ts_ms: int | None = None, public_key_pem: bytes | str | None = None) -> str:
    """Lowercase hex of RSA-OAEP-SHA256(`refresh_{ts_ms}`); 256 chars for the 1024-bit key."""
    pem = public_key_pem or BILIBILI_PUBLIC_KEY_PEM
    if isinstance(pem, str):
        pem = pem.encode()
    key = serialization.load_pem_public_key(pem)
    assert isinstance(key, rsa.RSAPublicKey)
    if ts_ms is None:
        ts_ms = int(time.time() * 1000)
    return key.encrypt(f"refresh_{ts_ms}".encode(), OAEP).hex()


def parse_refresh_csrf(html: str) -> str | None:
    m = _CSRF_RE.search(html)
    return m.group(1).strip() if m else None
