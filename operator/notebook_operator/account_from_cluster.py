"""`cloud check --from KIND/NAME`: the account a ProviderConfig or ClusterProviderConfig describes, built with the
caller's own Kubernetes identity (its kubeconfig reads the object and its Secret, or requests the namespace's
identity token) - the same credentials the operator would use, checked before the operator relies on them."""

from __future__ import annotations

from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from notebook_operator.account_connection import Tenancy, read_credentials_secret, secret_credentials, token_source
from notebook_operator.api.meta import GROUP, VERSION
from notebook_operator.api.providerconfig import AccountSpec, ClusterProviderConfigSpec, ProviderConfigSpec
from notebook_operator.kube import Kube
from notebook_operator.providers.credentials import Credentials, CredentialsError
from notebook_operator.providers.factory import Account
from notebook_operator.providers.identity import CredentialSource
from notebook_operator.providers.oidc import oidc_source

KINDS = {
    "providerconfig": "ProviderConfig",
    "providerconfigs": "ProviderConfig",
    "nbpc": "ProviderConfig",
    "clusterproviderconfig": "ClusterProviderConfig",
    "clusterproviderconfigs": "ClusterProviderConfig",
    "nbcpc": "ClusterProviderConfig",
}


class NotUsable(ValueError):
    """The object is missing or names credentials the caller cannot read; the message names no secret."""


def parse_reference(text: str) -> tuple[str, str]:
    """`providerconfig/NAME` or `clusterproviderconfig/NAME` (or their short names) -> (kind, name)."""
    kind, sep, name = text.partition("/")
    if not sep or kind.lower() not in KINDS or not name:
        raise NotUsable(f"--from {text!r}: expected providerconfig/NAME or clusterproviderconfig/NAME")
    return KINDS[kind.lower()], name


async def _spec(kube: Kube, kind: str, namespace: str, name: str) -> AccountSpec:
    try:
        if kind == "ClusterProviderConfig":
            body: dict[str, Any] = await kube.custom.get_cluster_custom_object(
                GROUP, VERSION, "clusterproviderconfigs", name
            )
            return ClusterProviderConfigSpec.model_validate(body["spec"])
        body = await kube.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "providerconfigs", name)
        return ProviderConfigSpec.model_validate(body["spec"])
    except ApiException as e:
        where = name if kind == "ClusterProviderConfig" else f"{namespace}/{name}"
        raise NotUsable(f"{kind} {where}: {'not found' if e.status == 404 else f'HTTP {e.status}'}") from None


async def account_from_cluster(kind: str, name: str, namespace: str, tenancy: Tenancy | None = None) -> Account:
    """The Account the operator would connect for this object (its token fetched now, once, for a keyless one)."""
    kube = await Kube.connect()
    try:
        spec = await _spec(kube, kind, namespace, name)
        scope = None if kind == "ClusterProviderConfig" else namespace
        credentials: Credentials | CredentialSource
        if spec.oidc is not None:
            token = await token_source(scope, spec, kube, tenancy or Tenancy())()

            async def fixed() -> str:
                return token

            credentials = oidc_source(spec.oidc, spec.provider, spec.region, fixed)
        else:
            try:
                data, _ = await read_credentials_secret(spec, scope or namespace, kube)
            except ApiException as e:
                raise NotUsable(f"Secret {spec.secret_ref and spec.secret_ref[1]}: HTTP {e.status}") from None
            credentials = secret_credentials(spec, data)
    except (CredentialsError, LookupError) as e:
        raise NotUsable(str(e)) from None
    finally:
        await kube.close()
    return Account(spec.provider, spec.region, credentials, spec.endpoint, spec.project_id, spec.rate_limit)
