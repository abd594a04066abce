"""The custom resources as pydantic models; crds/ is generated from these."""

from notebook_operator.api.idlecullerpolicy import IdleCullerPolicy, IdleCullerPolicySpec
from notebook_operator.api.meta import API_VERSION, GROUP, VERSION
from notebook_operator.api.notebookinstance import NotebookInstance, NotebookInstanceSpec
from notebook_operator.api.providerconfig import (
    ClusterProviderConfig,
    ClusterProviderConfigSpec,
    ProviderConfig,
    ProviderConfigSpec,
)

__all__ = [
    "API_VERSION",
    "GROUP",
    "VERSION",
    "ClusterProviderConfig",
    "ClusterProviderConfigSpec",
    "IdleCullerPolicy",
    "IdleCullerPolicySpec",
    "NotebookInstance",
    "NotebookInstanceSpec",
    "ProviderConfig",
    "ProviderConfigSpec",
]
