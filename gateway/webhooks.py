"""Payment-provider webhooks: the signature that proves a notice came from the provider.

`X-Signature: sha256=<hex>` where <hex> is HMAC-SHA256 of the raw request body under the shared
webhook secret. The signature covers the body's `ts`, so a captured notice cannot be re-dated;
a notice outside the tolerance window is refused, and one inside it is harmless to replay
because deposits are credited once per provider ref.
"""

import hashlib
import hmac

SIGNATURE_HEADER = "X-Signature"
SCHEME = "sha256="


def sign(secret: str, body: bytes) -> str:
    """The header value a provider sends for `body`."""
    return SCHEME + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_valid(secret: str, body: bytes, header: str | None) -> bool:
    """True if `header` is the signature of `body`; compared in constant time."""
    if not header or not header.startswith(SCHEME):
        return False
    given = SCHEME + header[len(SCHEME):].strip().lower()
    return hmac.compare_digest(sign(secret, body).encode(), given.encode())


def fresh(ts_s: float, now_s: float, tolerance_s: float) -> bool:
    """True if the notice's time is within `tolerance_s` of ours, either way."""
    return abs(now_s - ts_s) <= tolerance_s
