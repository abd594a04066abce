"""Alibaba Cloud ACS3-HMAC-SHA256 (the V3 signature the PAI-DSW SDK uses by default)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from urllib.parse import quote

from notebook_operator.signing import header

ALGORITHM = "ACS3-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def payload_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def canonical_query(query: Iterable[tuple[str, str]]) -> str:
    """Keys sorted; every key and value percent-encoded with only `~` kept (space -> %20)."""
    pairs = sorted((quote(k, safe="~"), quote(v, safe="~")) for k, v in query)
    return "&".join(f"{k}={v}" for k, v in pairs)


def canonical_request(
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    signed_headers: list[str],
    hashed_payload: str,
) -> str:
    """`path` is the pathname exactly as sent (already percent-encoded); header names lower-case."""
    canonical_headers = "".join(f"{name}:{headers[name].strip()}\n" for name in signed_headers)
    return "\n".join(
        [method.upper(), path, canonical_query(query), canonical_headers, ";".join(signed_headers), hashed_payload]
    )


def signature(secret: str, canonical: str) -> str:
    string_to_sign = f"{ALGORITHM}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    return hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()


def authorization(
    access_key_id: str,
    secret: str,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
) -> str:
    """The Authorization header; every header present is signed, as the official SDK does."""
    lower = {k.lower(): v for k, v in headers.items()}
    signed = sorted(lower)
    canonical = canonical_request(method, path, query, lower, signed, lower["x-acs-content-sha256"])
    sig = signature(secret, canonical)
    return f"{ALGORITHM} Credential={access_key_id},SignedHeaders={';'.join(signed)},Signature={sig}"


def parse_authorization(value: str) -> tuple[str, list[str], str] | None:
    """(access key id, signed header names, signature) or None when malformed."""
    return header.parse(value, ALGORITHM, "Credential")
