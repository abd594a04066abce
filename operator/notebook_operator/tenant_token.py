"""A namespace's own OIDC token: requested through the TokenRequest API for the identity ServiceAccount of the
ProviderConfig's namespace, so the cloud's trust policy sees that namespace (`sub` =
system:serviceaccount:NAMESPACE:NAME), never the operator. Kept and requested again before it expires."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from notebook_operator.kube import Kube, ServiceAccountMissing, TokenRequestDenied
from notebook_operator.providers.credentials import CredentialsError, IdentityTokenMissing

TOKEN_LIFETIME_S = 3600
REFRESH_AT = 0.8  # of the lifetime, as the kubelet refreshes projected tokens


class IdentityServiceAccountMissing(CredentialsError):
    """The namespace has no identity ServiceAccount: nothing is sent to the STS or IAM."""


class TenantToken:
    """A TokenSource (providers/oidc.py) for one namespace."""

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        service_account: str,
        audience: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.kube, self.namespace, self.service_account, self.audience = kube, namespace, service_account, audience
        self._clock = clock
        self._lock = asyncio.Lock()
        self._token = ""
        self._refresh_at = 0.0

    async def __call__(self) -> str:
        async with self._lock:
            now = self._clock()
            if self._token and now < self._refresh_at:
                return self._token
            try:
                token, expires = await self.kube.request_token(
                    self.namespace, self.service_account, self.audience, TOKEN_LIFETIME_S
                )
            except ServiceAccountMissing:
                raise IdentityServiceAccountMissing(
                    f"keyless credentials need the ServiceAccount {self.service_account} in namespace "
                    f"{self.namespace}; the cloud trusts that account, not the operator"
                ) from None
            except TokenRequestDenied as e:
                raise IdentityTokenMissing(str(e)) from None
            lifetime = (expires - now) if expires else TOKEN_LIFETIME_S
            self._token, self._refresh_at = token, now + REFRESH_AT * max(0.0, lifetime)
            return token
