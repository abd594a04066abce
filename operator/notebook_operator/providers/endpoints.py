"""Regional endpoints, as the official SDKs resolve them."""

from __future__ import annotations

from notebook_operator.providers.errors import InvalidRequest

MODELARTS_REGIONS = frozenset(
    {
        "cn-north-1",
        "cn-north-2",
        "cn-north-4",
        "cn-north-9",
        "cn-north-11",
        "cn-north-12",
        "cn-south-1",
        "cn-east-3",
        "cn-east-4",
        "cn-southwest-2",
        "cn-southwest-3",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-southeast-3",
        "ap-southeast-4",
        "af-south-1",
        "af-north-1",
        "la-south-2",
        "la-north-2",
        "sa-brazil-1",
        "tr-west-1",
        "me-east-1",
    }
)
ROMA_REGIONS = frozenset(
    {
        "cn-north-1",
        "cn-north-4",
        "cn-east-2",
        "cn-east-3",
        "cn-south-1",
        "ap-southeast-1",
        "ap-southeast-3",
        "ru-northwest-2",
    }
)


def pai_dsw(region: str, vpc: bool = False) -> str:
    return f"https://pai-dsw{'-vpc' if vpc else ''}.{region}.aliyuncs.com"


def modelarts(region: str) -> str:
    if region not in MODELARTS_REGIONS:
        raise InvalidRequest(f"ModelArts has no known endpoint in region {region!r}; set spec.endpoint")
    domain = "myhuaweicloud.cn" if region == "ap-southeast-1" else "myhuaweicloud.com"
    return f"https://modelarts.{region}.{domain}"


def roma(region: str) -> str:
    if region not in ROMA_REGIONS:
        raise InvalidRequest(f"ROMA Connect has no known endpoint in region {region!r}; set spec.endpoint")
    return f"https://roma.{region}.myhuaweicloud.com"


def resolve(provider: str, region: str, override: str | None = None) -> str:
    if override:
        return override
    if provider == "pai-dsw":
        return pai_dsw(region)
    if provider in ("modelarts", "modelarts-devenv"):
        return modelarts(region)
    if provider == "roma-connect":
        return roma(region)
    raise InvalidRequest(f"unknown provider {provider!r}")
