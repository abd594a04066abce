"""Cloud credentials: from a Kubernetes Secret's data or from the clouds' standard environment variables."""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from notebook_operator.api.providerconfig import (
    SECRET_ACCESS_KEY_ID,
    SECRET_ACCESS_KEY_SECRET,
    SECRET_IAM_TOKEN,
    SECRET_SECURITY_TOKEN,
)


class CredentialsError(ValueError):
    """A Secret or environment lacks what a cloud needs. The message names keys, never values."""


class IdentityTokenMissing(CredentialsError):
    """Keyless credentials: the pod's OIDC token file is not there (no projected token mounted?)."""


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)
    iam_token: str | None = field(default=None, repr=False)  # Huawei: X-Auth-Token instead of a key pair

    def __repr__(self) -> str:
        return f"Credentials(access_key_id={self.access_key_id!r}, secret=***)"

    def __str__(self) -> str:
        return repr(self)


def from_secret_data(data: Mapping[str, str] | None, secret_name: str) -> Credentials:
    """`data` as stored in a Secret (base64 values)."""
    decoded = {k: base64.b64decode(v).decode("utf-8").strip() for k, v in (data or {}).items()}
    if decoded.get(SECRET_IAM_TOKEN) and not decoded.get(SECRET_ACCESS_KEY_ID):
        return Credentials("", "", iam_token=decoded[SECRET_IAM_TOKEN])
    missing = [k for k in (SECRET_ACCESS_KEY_ID, SECRET_ACCESS_KEY_SECRET) if not decoded.get(k)]
    if missing:
        raise CredentialsError(f"Secret {secret_name} has no {' or '.join(missing)} (nor {SECRET_IAM_TOKEN})")
    return Credentials(
        decoded[SECRET_ACCESS_KEY_ID], decoded[SECRET_ACCESS_KEY_SECRET], decoded.get(SECRET_SECURITY_TOKEN) or None
    )


ENV_NAMES = {
    "alibaba": ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN"),
    "huawei": ("HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK", "HUAWEICLOUD_SDK_SECURITY_TOKEN"),
}


def from_environment(cloud: str, environ: Mapping[str, str] | None = None) -> Credentials:
    env = os.environ if environ is None else environ
    key_id, secret, token = ENV_NAMES[cloud]
    missing = [name for name in (key_id, secret) if not env.get(name)]
    if missing:
        raise CredentialsError(f"set {' and '.join(missing)}")
    return Credentials(env[key_id], env[secret], env.get(token) or None)
