"""JWT authentication (PyJWT): HS256 with a shared secret in development, RS256 in production.

A token's `sub` is the user id and `roles` a subset of ROLES. System account names can never be
a user: a token for them is refused.
"""

import time

import jwt

from engine.engine import SYSTEM_ACCOUNTS

ROLES = ("bettor", "trader", "operator", "admin")


class AuthError(Exception):
    pass


class Identity:
    __slots__ = ("user", "roles")

    def __init__(self, user: str, roles: tuple[str, ...]) -> None:
        self.user = user
        self.roles = roles

    def can(self, role: str) -> bool:
        return role in self.roles or "admin" in self.roles


def make_token(secret: str, user: str, roles: list[str], ttl_s: int = 86_400,
               algorithm: str = "HS256") -> str:
    now = int(time.time())
    return jwt.encode({"sub": user, "roles": roles, "iat": now, "exp": now + ttl_s}, secret,
                      algorithm=algorithm)


def verify(token: str, secret: str, public_key: str | None = None) -> Identity:
    try:
        if public_key:
            claims = jwt.decode(token, public_key, algorithms=["RS256"])
        else:
            claims = jwt.decode(token, secret, algorithms=["HS256"])
    except jwt.PyJWTError as exc:
        raise AuthError(f"invalid token: {exc}") from None
    user = claims.get("sub")
    roles = claims.get("roles", [])
    if not isinstance(user, str) or not user or len(user) > 64:
        raise AuthError("token has no usable sub")
    if user in SYSTEM_ACCOUNTS:
        raise AuthError(f"{user!r} is a system account")
    if not isinstance(roles, list) or not set(roles) <= set(ROLES):
        raise AuthError(f"roles must be a subset of {ROLES}")
    return Identity(user, tuple(roles))
