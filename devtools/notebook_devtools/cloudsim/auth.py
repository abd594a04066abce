"""Verification of both signing schemes, as the clouds' gateways do it.

The signed-header list comes from the request (the Alibaba SDK signs every header it sends),
dates must be within 15 minutes of the real clock, and an ACS3 nonce is accepted once.
"""

from __future__ import annotations

import hmac
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import web

from notebook_operator.signing import acs3, sdk_hmac

MAX_SKEW_S = 15 * 60


@dataclass(frozen=True)
class Credential:
    access_key_id: str
    secret: str
    security_token: str | None = None
    expires_at: float | None = None  # wall clock; temporary credentials only
    account: str | None = None  # PAI-DSW: the account temporary credentials act for (default: the key itself)

    def __repr__(self) -> str:  # never print the secret
        return f"Credential({self.access_key_id!r}, secret=***)"

    @classmethod
    def parse(cls, text: str) -> Credential:
        """`AK:SK` or `AK:SK:STS_TOKEN`."""
        parts = text.split(":", 2)
        if len(parts) < 2 or not parts[0] or not parts[1]:
            raise ValueError("a credential is AK:SK or AK:SK:TOKEN")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)


class AuthError(Exception):
    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass
class Verifier:
    credentials: dict[str, Credential]
    iam_tokens: set[str] = field(default_factory=set)
    _nonces: OrderedDict[str, float] = field(default_factory=OrderedDict)

    def _remember_nonce(self, nonce: str) -> bool:
        now = time.time()
        while self._nonces and next(iter(self._nonces.values())) < now - MAX_SKEW_S:
            self._nonces.popitem(last=False)
        if nonce in self._nonces:
            return False
        self._nonces[nonce] = now
        return True

    def verify_acs3(self, request: web.Request, body: bytes) -> Credential:
        """Returns the caller's credential or raises AuthError with Alibaba's code."""
        parsed = acs3.parse_authorization(request.headers.get("Authorization", ""))
        if parsed is None:
            raise AuthError("IncompleteSignature", "The request signature does not conform to Aliyun standards.", 400)
        access_key_id, signed, signature = parsed
        credential = self.credentials.get(access_key_id)
        if credential is None:
            raise AuthError("InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404)
        required = {"host", "x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256", "x-acs-action"}
        if not required <= set(signed) or any(name not in request.headers for name in signed):
            raise AuthError("IncompleteSignature", "The request signature does not conform to Aliyun standards.", 400)
        try:
            stamp = datetime.strptime(request.headers["x-acs-date"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            raise AuthError("InvalidTimeStamp.Format", "Specified time stamp is not valid.", 400) from None
        if abs(stamp.timestamp() - time.time()) > MAX_SKEW_S:
            raise AuthError("InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.", 400)
        if request.headers["x-acs-content-sha256"] != acs3.payload_hash(body):
            raise AuthError("InvalidContentSha256", "The body does not match x-acs-content-sha256.", 400)
        headers = {name: request.headers[name] for name in signed}
        canonical = acs3.canonical_request(
            request.method,
            request.rel_url.raw_path,
            request.query.items(),
            headers,
            signed,
            request.headers["x-acs-content-sha256"],
        )
        if not hmac.compare_digest(acs3.signature(credential.secret, canonical), signature):
            raise AuthError("SignatureDoesNotMatch", "Specified signature is not matched with our calculation.", 400)
        if credential.security_token and request.headers.get("x-acs-security-token") != credential.security_token:
            raise AuthError("InvalidSecurityToken.Mismatch", "Specified security token is not valid.", 400)
        if credential.expires_at is not None and time.time() >= credential.expires_at:
            raise AuthError("InvalidSecurityToken.Expired", "Specified SecurityToken is expired.", 400)
        if not self._remember_nonce(request.headers["x-acs-signature-nonce"]):
            raise AuthError("SignatureNonceUsed", "Specified signature nonce was used already.", 400)
        return credential

    def verify_huawei(self, request: web.Request, body: bytes) -> str:
        """Returns the access key (or 'iam-token') or raises AuthError with APIG's code."""
        token = request.headers.get("X-Auth-Token")
        if token and not request.headers.get("Authorization"):
            if any(hmac.compare_digest(token, known) for known in self.iam_tokens):
                return "iam-token"
            raise AuthError("APIGW.0301", "Incorrect IAM authentication information: token is invalid.", 401)
        parsed = sdk_hmac.parse_authorization(request.headers.get("Authorization", ""))
        if parsed is None:
            raise AuthError("APIGW.0301", "Incorrect IAM authentication information: Authorization not found.", 401)
        access_key, signed, signature = parsed
        credential = self.credentials.get(access_key)
        if credential is None:
            raise AuthError("APIGW.0301", "Incorrect IAM authentication information: access key not found.", 401)
        if "x-sdk-date" not in signed or "host" not in signed or any(n not in request.headers for n in signed):
            raise AuthError("APIGW.0301", "Incorrect IAM authentication information: signed headers missing.", 401)
        sdk_date = request.headers["X-Sdk-Date"]
        try:
            stamp = datetime.strptime(sdk_date, sdk_hmac.DATE_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            raise AuthError("APIGW.0301", "Incorrect IAM authentication information: bad x-sdk-date.", 401) from None
        if abs(stamp.timestamp() - time.time()) > MAX_SKEW_S:
            raise AuthError("APIGW.0301", "Incorrect IAM authentication information: x-sdk-date expired.", 401)
        headers = {name: request.headers[name] for name in signed}
        canonical = sdk_hmac.canonical_request(
            request.method, request.rel_url.raw_path, request.query.items(), headers, signed, body
        )
        expected = sdk_hmac.signature(credential.secret, sdk_date, canonical)
        if not hmac.compare_digest(expected, signature):
            raise AuthError("APIGW.0301", "Incorrect IAM authentication information: verify aksk signature fail.", 401)
        if credential.security_token and request.headers.get("X-Security-Token") != credential.security_token:
            raise AuthError("APIGW.0301", "Incorrect IAM authentication information: security token invalid.", 401)
        if credential.expires_at is not None and time.time() >= credential.expires_at:
            raise AuthError("APIGW.0301", "Incorrect IAM authentication information: security token expired.", 401)
        return access_key
