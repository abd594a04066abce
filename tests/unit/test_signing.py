"""Both signing schemes: byte-exact on the reference vectors, and equal to the official SDK signers
for random methods, paths, queries and bodies."""

from __future__ import annotations

import hashlib
from urllib.parse import quote

from alibabacloud_tea_openapi.utils import Utils as AlibabaUtils
from darabonba.request import DaraRequest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer
from hypothesis import given, settings
from hypothesis import strategies as st

from notebook_operator.signing import acs3, sdk_hmac

PAI_REFERENCE = (
    "ACS3-HMAC-SHA256 Credential=AKID,SignedHeaders=accept;host;x-acs-action;x-acs-content-sha256;x-acs-date;"
    "x-acs-signature-nonce;x-acs-version,Signature=49f5f5baf8698608b773800291093e3ae89a326765cd40195bc79581a3a843f2"
)
HUAWEI_REFERENCE_SIGNATURE = "40887fdeba91650811fd9228a9a9ab45fa4057bd4be3d6e4961e715d9dda5bfd"


def test_acs3_reference_vector() -> None:
    headers = {
        "host": "pai-dsw.cn-hangzhou.aliyuncs.com",
        "x-acs-action": "GetInstance",
        "x-acs-version": "2022-01-01",
        "x-acs-date": "2024-01-01T00:00:00Z",
        "x-acs-signature-nonce": "nonce-1",
        "accept": "application/json",
        "x-acs-content-sha256": acs3.EMPTY_SHA256,
    }
    got = acs3.authorization("AKID", "SECRET", "GET", "/api/v2/instances/dsw-123", [("Fields", "a b")], headers)
    assert got == PAI_REFERENCE


def test_sdk_hmac_reference_vector() -> None:
    headers = {
        "Content-Type": "application/json",
        "X-Project-Id": "proj123",
        "X-Sdk-Date": "20240101T000000Z",
        "Host": "modelarts.cn-north-4.myhuaweicloud.com",
    }
    got = sdk_hmac.authorization(
        "HWAK", "HWSK", "GET", "/v1/proj123/notebooks", [("limit", 10), ("status", "RUNNING")], headers, b""
    )
    assert got == (
        "SDK-HMAC-SHA256 Access=HWAK, SignedHeaders=content-type;host;x-project-id;x-sdk-date, "
        f"Signature={HUAWEI_REFERENCE_SIGNATURE}"
    )


def test_parse_authorization_round_trip() -> None:
    assert acs3.parse_authorization(PAI_REFERENCE) == (
        "AKID",
        ["accept", "host", "x-acs-action", "x-acs-content-sha256", "x-acs-date", "x-acs-signature-nonce",
         "x-acs-version"],
        "49f5f5baf8698608b773800291093e3ae89a326765cd40195bc79581a3a843f2",
    )  # fmt: skip
    assert acs3.parse_authorization("Bearer x") is None
    assert sdk_hmac.parse_authorization("SDK-HMAC-SHA256 Access=A, SignedHeaders=host, Signature=s") == (
        "A",
        ["host"],
        "s",
    )
    assert sdk_hmac.parse_authorization("SDK-HMAC-SHA256 garbage") is None


text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=20)
segments = st.lists(text.filter(lambda s: s not in ("", ".", "..")), min_size=1, max_size=4)
keys = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.~", min_size=1, max_size=12)
methods = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"])
secrets = st.text(st.characters(codec="ascii", min_codepoint=33, max_codepoint=126), min_size=1, max_size=40)


@settings(max_examples=150, deadline=None)
@given(method=methods, path=segments, query=st.dictionaries(keys, text, max_size=5), body=st.binary(max_size=64),
       secret=secrets)  # fmt: skip
def test_acs3_matches_official_sdk(
    method: str, path: list[str], query: dict[str, str], body: bytes, secret: str
) -> None:
    pathname = "/" + "/".join(quote(s, safe="") for s in path)  # the SDK percent-encodes path params
    payload = hashlib.sha256(body).hexdigest()
    headers = {
        "host": "127.0.0.1:8765",
        "x-acs-action": "Op",
        "x-acs-version": "2022-01-01",
        "x-acs-date": "2024-05-06T07:08:09Z",
        "x-acs-signature-nonce": "0123456789abcdef",
        "x-acs-content-sha256": payload,
        "content-type": "application/json; charset=utf-8",
    }
    request = DaraRequest()
    request.method, request.pathname, request.query, request.headers = method, pathname, dict(query), dict(headers)
    official = AlibabaUtils.get_authorization(request, "ACS3-HMAC-SHA256", payload, "AK1", secret)
    assert acs3.authorization("AK1", secret, method, pathname, list(query.items()), headers) == official


@settings(max_examples=150, deadline=None)
@given(
    method=methods,
    path=segments,
    query=st.one_of(
        st.dictionaries(keys, st.one_of(text, st.integers(), st.booleans()), max_size=5).map(lambda d: list(d.items())),
        st.lists(st.tuples(keys, text), max_size=5),  # repeated keys
    ),
    body=st.binary(max_size=64),
    secret=secrets,
)
def test_sdk_hmac_matches_official_sdk(
    method: str, path: list[str], query: list[tuple[str, object]], body: bytes, secret: str
) -> None:
    resource_path = "/" + "/".join(quote(s, safe="") for s in path)
    headers = {"Content-Type": "application/json", "X-Project-Id": "p1", "X-Sdk-Date": "20240506T070809Z"}
    request = SdkRequest(method, "http", "127.0.0.1:8765", resource_path, query_params=list(query),
                         header_params=dict(headers), body=body)  # fmt: skip
    Signer(BasicCredentials("AK1", secret)).sign(request)
    official = request.header_params.pop("Authorization")
    signed = {k: v for k, v in request.header_params.items()}
    signed.setdefault("Host", "127.0.0.1:8765")
    assert sdk_hmac.authorization("AK1", secret, method, resource_path, query, signed, body) == official
