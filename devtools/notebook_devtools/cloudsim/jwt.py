"""OIDC token verification as a cloud's token service does it: RS256 signature against the identity
provider's JWKS, issuer (when configured), audience, and expiry on the caller-supplied clock."""

from __future__ import annotations

import base64
import fnmatch
import json
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa


class OidcRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class OidcOptions:
    jwks: str | None = None  # a file or an http(s) URL
    issuer: str | None = None
    client_id: str | None = None  # the audience Huawei's identity provider expects
    idp_id: str | None = None
    # Trust policies: PRINCIPAL (a RAM role ARN or a Huawei identity provider id) -> the `sub` patterns it trusts
    # (exact, or with *). No policy at all: every verified token is trusted (the emulator's old default).
    trust: dict[str, list[str]] = field(default_factory=dict)

    def trusts(self, principal: str, subject: str) -> bool:
        if not self.trust:
            return True
        return any(fnmatch.fnmatchcase(subject, pattern) for pattern in self.trust.get(principal, ()))


def trust_entries(entries: list[str]) -> dict[str, list[str]]:
    """--oidc-trust PRINCIPAL=SUB, repeatable. A RAM role ARN holds ':' but no '=', so the first '=' splits."""
    trust: dict[str, list[str]] = {}
    for entry in entries:
        principal, sep, subject = entry.partition("=")
        if not sep or not principal or not subject:
            raise ValueError(f"--oidc-trust {entry!r}: expected PRINCIPAL=SUB")
        trust.setdefault(principal, []).append(subject)
    return trust


def load_jwks(source: str) -> dict[str, Any]:
    if source.startswith(("http://", "https://")):
        with urllib.request.urlopen(source, timeout=10) as answer:
            found: dict[str, Any] = json.load(answer)
            return found
    loaded: dict[str, Any] = json.loads(Path(source).read_text())
    return loaded


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _number(value: str) -> int:
    return int.from_bytes(_b64(value), "big")


class TokenVerifier:
    def __init__(self, options: OidcOptions, jwks: dict[str, Any] | None) -> None:
        self.options = options
        self.keys = {key.get("kid", ""): key for key in (jwks or {}).get("keys", []) if key.get("kty") == "RSA"}

    def verify(self, token: str, audience: str | None, now: float) -> dict[str, Any]:
        if not self.keys:
            raise OidcRefused("OIDCProviderNotConfigured", "the emulator has no JWKS (--oidc-jwks)")
        try:
            header_part, payload_part, signature_part = token.split(".")
            header, claims = json.loads(_b64(header_part)), json.loads(_b64(payload_part))
        except ValueError:
            raise OidcRefused("InvalidToken", "the OIDC token is not a JWT") from None
        key = self.keys.get(header.get("kid", "")) if header.get("kid") else next(iter(self.keys.values()))
        if header.get("alg") != "RS256" or key is None:
            raise OidcRefused("InvalidToken", "the OIDC token is not signed by a key of the provider")
        public = rsa.RSAPublicNumbers(_number(key["e"]), _number(key["n"])).public_key()
        try:
            signed = f"{header_part}.{payload_part}".encode()
            public.verify(_b64(signature_part), signed, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise OidcRefused("InvalidToken", "the OIDC token's signature does not verify") from None
        if self.options.issuer and claims.get("iss") != self.options.issuer:
            raise OidcRefused("IssuerNotMatch", "the OIDC token's issuer is not the provider's")
        audiences = claims.get("aud") if isinstance(claims.get("aud"), list) else [claims.get("aud")]
        if audience is not None and audience not in audiences:
            raise OidcRefused("AudienceNotMatch", f"the OIDC token's audience is not {audience}")
        if float(claims.get("exp", 0)) <= now:
            raise OidcRefused("TokenExpired", "the OIDC token has expired")
        return dict(claims)
