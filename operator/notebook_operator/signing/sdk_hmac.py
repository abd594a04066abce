"""Huawei Cloud SDK-HMAC-SHA256 (huaweicloudsdkcore's default AK/SK signer)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from urllib.parse import quote, unquote

from notebook_operator.signing import header

ALGORITHM = "SDK-HMAC-SHA256"
DATE_HEADER = "X-Sdk-Date"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"


def canonical_uri(path: str) -> str:
    """Each segment re-encoded with only `~` kept; always ends with '/'."""
    segments = [quote(segment, safe="~") for segment in unquote(path).split("/")]
    uri = "/".join(segments)
    return uri if uri.endswith("/") else uri + "/"


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def canonical_query(query: Iterable[tuple[str, object]]) -> str:
    """Sorted on the raw (key, value) pairs, then encoded - the SDK's order for non-ASCII values."""
    pairs = sorted((k, _text(v)) for k, v in query)
    return "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in pairs)


def signed_header_names(headers: Mapping[str, str]) -> list[str]:
    return sorted(name.lower() for name in headers if "_" not in name)


def canonical_request(
    method: str,
    path: str,
    query: Iterable[tuple[str, object]],
    headers: Mapping[str, str],
    signed_headers: list[str],
    body: bytes,
) -> str:
    lower = {k.lower(): v for k, v in headers.items()}
    canonical_headers = "\n".join(f"{name}:{lower[name].strip()}" for name in signed_headers) + "\n"
    hashed = lower.get("x-sdk-content-sha256") or hashlib.sha256(body).hexdigest()
    return "\n".join(
        [
            method.upper(),
            canonical_uri(path),
            canonical_query(query),
            canonical_headers,
            ";".join(signed_headers),
            hashed,
        ]
    )


def signature(secret_key: str, sdk_date: str, canonical: str) -> str:
    string_to_sign = f"{ALGORITHM}\n{sdk_date}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    return hmac.new(secret_key.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()


def authorization(
    access_key: str,
    secret_key: str,
    method: str,
    path: str,
    query: Iterable[tuple[str, object]],
    headers: Mapping[str, str],
    body: bytes,
) -> str:
    """The Authorization header. `headers` must hold Host and X-Sdk-Date already."""
    signed = signed_header_names(headers)
    sdk_date = {k.lower(): v for k, v in headers.items()}["x-sdk-date"]
    canonical = canonical_request(method, path, query, headers, signed, body)
    sig = signature(secret_key, sdk_date, canonical)
    return f"{ALGORITHM} Access={access_key}, SignedHeaders={';'.join(signed)}, Signature={sig}"


def parse_authorization(value: str) -> tuple[str, list[str], str] | None:
    """(access key id, signed header names, signature) or None when malformed."""
    return header.parse(value, ALGORITHM, "Access")
