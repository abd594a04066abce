"""Pure provider logic: status tables, error mapping, endpoints, credentials, backoff."""

from __future__ import annotations

import base64
import random
from typing import Any

import httpx
import pytest

from notebook_operator.account_connection import plain_http_allowed
from notebook_operator.providers import endpoints
from notebook_operator.providers.credentials import CredentialsError, from_environment, from_secret_data
from notebook_operator.providers.devenv.schemas import PHASES as DEVENV_PHASES
from notebook_operator.providers.egress import AllowList, endpoint_allow_list
from notebook_operator.providers.errors import (
    AuthFailed,
    Conflict,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    ProviderError,
    Throttled,
    Transient,
)
from notebook_operator.providers.http import RetryPolicy, check_endpoint
from notebook_operator.providers.huawei import error_mapper
from notebook_operator.providers.modelarts.schemas import PHASES as MODELARTS_PHASES
from notebook_operator.providers.modelarts.schemas import Notebook
from notebook_operator.providers.modelarts.schemas import to_cloud_instance as modelarts_instance
from notebook_operator.providers.pai.schemas import PHASES as PAI_PHASES
from notebook_operator.providers.pai.schemas import Instance
from notebook_operator.providers.pai.schemas import map_error as pai_error
from notebook_operator.providers.pai.schemas import to_cloud_instance as pai_instance
from notebook_operator.providers.roma.schemas import PHASES as ROMA_PHASES

# The status lists of the seeds and the SDKs: every one must map to a real phase.
DOCUMENTED = {
    "pai": (PAI_PHASES, "Creating SaveFailed Stopped Failed ResourceAllocating Stopping Updating Saving Queuing "
                        "Recovering Starting Running Saved Deleting EnvPreparing"),
    "modelarts": (MODELARTS_PHASES, "INIT CREATING STARTING STOPPING DELETING RUNNING STOPPED SNAPSHOTTING "
                                    "CREATE_FAILED START_FAILED DELETE_FAILED ERROR DELETED FROZEN"),
    "devenv": (DEVENV_PHASES, "CREATING CREATE_FAILED STARTING RESTARTING START_FAILED RUNNING STOPPING STOPPED "
                              "UNAVAILABLE DELETED RESIZING RESIZE_FAILED"),
    "roma": (ROMA_PHASES, "CREATING RUNNING DELETING DELETED ERROR CREATE_FAILED DELETE_FAILED SOFT_DELETED"),
}  # fmt: skip


@pytest.mark.parametrize("cloud", DOCUMENTED)
def test_every_documented_status_has_a_phase(cloud: str) -> None:
    table, statuses = DOCUMENTED[cloud]
    assert set(statuses.split()) == set(table)
    assert "Unknown" not in table.values()


def test_running_and_stopped_are_named_alike() -> None:
    assert PAI_PHASES["Running"] == MODELARTS_PHASES["RUNNING"] == DEVENV_PHASES["RUNNING"] == "Running"
    assert PAI_PHASES["Stopped"] == MODELARTS_PHASES["STOPPED"] == DEVENV_PHASES["STOPPED"] == "Stopped"


def test_pai_instance_translation() -> None:
    raw: dict[str, Any] = {
        "InstanceId": "dsw-1", "InstanceName": "n", "Status": "Running", "EcsSpec": "ecs.gn6i-c4g1.xlarge",
        "AccumulatedRunningTimeInMs": 7_200_500, "GmtCreateTime": "2026-01-01T00:00:00Z",
        "GmtModifiedTime": "2026-01-02T03:00:00Z", "JupyterlabUrl": "https://lab", "AcceleratorType": "GPU",
        "RequestedResource": {"CPU": "4", "Memory": "15", "GPU": "1", "GPUType": "T4"},
        "Labels": [{"Key": "team", "Value": "a"}],
        "IdleInstanceCuller": {"CpuPercentThreshold": 10, "MaxIdleTimeInMinutes": 60},
        "InstanceShutdownTimer": {"DueTime": "2026-01-03T00:00:00Z"}, "Unexpected": {"fine": True},
    }  # fmt: skip
    instance = pai_instance(Instance.model_validate(raw))
    assert (instance.phase, instance.cloud_status, instance.resources.gpu, instance.resources.cpu) == (
        "Running", "Running", 1, 4.0,
    )  # fmt: skip
    assert instance.accumulated_running_seconds == 7200
    assert instance.started_at and instance.started_at.isoformat() == "2026-01-02T03:00:00+00:00"
    assert instance.labels == {"team": "a"} and instance.urls.jupyter_lab == "https://lab"
    assert instance.idle_rule and instance.idle_rule.max_idle_minutes == 60
    assert instance.shutdown_at and instance.shutdown_at.day == 3
    unknown = pai_instance(Instance.model_validate({**raw, "Status": "Teleporting"}))
    assert unknown.phase == "Unknown" and unknown.started_at is None


def test_modelarts_lease_translation() -> None:
    lease = {"create_at": 1_700_000_000_000, "duration": 3_600_000, "enable": True, "type": "TIMING"}
    raw = {"id": "n1", "name": "nb", "status": "RUNNING", "flavor": "f", "custom_spec": {"gpu": 1.0, "memory": 8192},
           "lease": lease}  # fmt: skip
    instance = modelarts_instance(Notebook.model_validate(raw))
    assert instance.started_at and instance.shutdown_at
    assert (instance.shutdown_at - instance.started_at).total_seconds() == 3600
    assert instance.resources.memory_gib == 8.0 and instance.is_gpu
    idle = {**raw, "lease": {**lease, "type": "IDLE"}}
    as_idle = modelarts_instance(Notebook.model_validate(idle))
    assert as_idle.shutdown_at is None and as_idle.idle_rule and as_idle.idle_rule.max_idle_minutes == 60


def test_the_clouds_reasons_become_one_line() -> None:
    pai = pai_instance(Instance.model_validate({"InstanceId": "dsw-1", "Status": "Failed", "ReasonCode": "NoStock",
                                                "ReasonMessage": "out of stock"}))  # fmt: skip
    assert pai.phase == "Failed" and pai.reason == "NoStock: out of stock"
    messy = pai_instance(Instance.model_validate({"InstanceId": "dsw-1", "Status": "Failed", "ReasonCode": " NoStock\n",
                                                  "ReasonMessage": "out of\r\nstock\x1b[31m \t here"}))  # fmt: skip
    assert messy.reason == "NoStock: out of stock [31m here"  # one line, no control characters
    assert pai_instance(Instance.model_validate({"InstanceId": "dsw-1", "Status": "Running", "ReasonCode": "",
                                                 "ReasonMessage": ""})).reason is None  # fmt: skip
    progress = [{"step": 1, "status": "COMPLETED", "description": "scheduled"},
                {"step": 2, "status": "FAILED", "description": "image pull failed"}]  # fmt: skip
    ma = modelarts_instance(Notebook.model_validate({"id": "n1", "status": "START_FAILED", "fail_reason": "",
                                                     "action_progress": progress}))  # fmt: skip
    assert ma.phase == "Failed" and ma.reason == "step 2 failed: image pull failed"
    with_reason = Notebook.model_validate({"id": "n1", "status": "START_FAILED", "fail_reason": "quota exceeded",
                                           "action_progress": progress})  # fmt: skip
    assert modelarts_instance(with_reason).reason == "quota exceeded"


def _response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers or {})


@pytest.mark.parametrize(
    ("status", "body", "headers", "kind"),
    [
        (200, {"Success": True}, {}, None),
        (200, {"Success": False, "Code": "InternalError", "Message": "x"}, {}, Transient),
        (404, {"Code": "InvalidAccessKeyId.NotFound", "Message": "ak"}, {}, AuthFailed),
        (400, {"Code": "SignatureDoesNotMatch"}, {}, AuthFailed),
        (403, {"Code": "Forbidden.RAM", "Message": "not authorized"}, {}, PermissionDenied),
        (403, {"Code": "NoPermission"}, {}, PermissionDenied),
        (404, {"Code": "InstanceNotFound"}, {}, NotFound),
        (400, {"Code": "InstanceStatusNotSupport"}, {}, Conflict),
        (400, {"Code": "IdleInstanceCullerAlreadyExists"}, {}, Conflict),
        (429, {"Code": "Throttling.User"}, {"x-acs-retry-after": "1500"}, Throttled),
        (400, {"Code": "Throttling"}, {}, Throttled),
        (503, {"Code": "ServiceUnavailable"}, {}, Transient),
        (400, {"Code": "ValidationError", "Message": "bad"}, {}, InvalidRequest),
    ],
)
def test_pai_error_mapping(status: int, body: dict[str, Any], headers: dict[str, str], kind: type | None) -> None:
    error = pai_error(_response(status, {"RequestId": "rid-1", **body}, headers), "Op")
    if kind is None:
        assert error is None
        return
    assert type(error) is kind
    assert error is not None and error.request_id == "rid-1" and error.provider == "pai-dsw"
    if kind is Throttled and headers:
        assert isinstance(error, Throttled) and error.retry_after == 1.5


@pytest.mark.parametrize(
    ("status", "body", "headers", "kind"),
    [
        (401, {"error_code": "APIGW.0301", "error_msg": "sig"}, {}, AuthFailed),
        (403, {"error_code": "APIGW.0302", "error_msg": "not authorized"}, {}, PermissionDenied),
        (404, {"error_code": "ModelArts.6404", "error_msg": "gone"}, {}, NotFound),
        (409, {"error_code": "ModelArts.6404", "error_msg": "state"}, {}, Conflict),
        (400, {"error_code": "ModelArts.0105", "error_message": "state"}, {}, Conflict),
        (429, {"error_code": "APIGW.0308", "error_msg": "slow"}, {"Retry-After": "3"}, Throttled),
        (500, {"error_code": "ROMA.00000500", "error_msg": "x", "error_details": "", "request_id": "r"}, {}, Transient),
        (400, {"code": "X", "message": "y"}, {}, InvalidRequest),
    ],
)
def test_huawei_error_mapping(status: int, body: dict[str, Any], headers: dict[str, str], kind: type) -> None:
    error = error_mapper("modelarts")(_response(status, body, {"X-Request-Id": "rid-2", **headers}), "Op")
    assert type(error) is kind and error is not None
    assert error.request_id == "rid-2" and error.code
    if kind is Throttled:
        assert isinstance(error, Throttled) and error.retry_after == 3.0


def test_error_text_names_code_and_request_id() -> None:
    error = NotFound("gone", provider="pai-dsw", operation="GetInstance", code="InstanceNotFound", request_id="r1")
    assert str(error) == "pai-dsw GetInstance: InstanceNotFound: gone (request id r1)"
    assert isinstance(error, ProviderError) and error.reason == "NotFound"


def test_endpoints() -> None:
    assert endpoints.resolve("pai-dsw", "cn-hangzhou") == "https://pai-dsw.cn-hangzhou.aliyuncs.com"
    assert endpoints.pai_dsw("cn-shanghai", vpc=True) == "https://pai-dsw-vpc.cn-shanghai.aliyuncs.com"
    assert endpoints.resolve("modelarts", "cn-north-4") == "https://modelarts.cn-north-4.myhuaweicloud.com"
    assert (
        endpoints.resolve("modelarts-devenv", "ap-southeast-1") == "https://modelarts.ap-southeast-1.myhuaweicloud.cn"
    )
    assert endpoints.resolve("roma-connect", "cn-east-3") == "https://roma.cn-east-3.myhuaweicloud.com"
    assert endpoints.resolve("modelarts", "xx-nowhere-1", "http://127.0.0.1:1") == "http://127.0.0.1:1"
    with pytest.raises(InvalidRequest, match=r"spec\.endpoint"):
        endpoints.resolve("modelarts", "xx-nowhere-1")


@pytest.mark.parametrize("url", ["http://127.0.0.1:8765", "http://localhost:1", "http://[::1]:80", "https://a.b"])
def test_endpoint_allowed(url: str) -> None:
    assert check_endpoint(url + "/") == url


@pytest.mark.parametrize("url", ["http://10.0.0.1:80", "http://example.com", "ftp://x", "nonsense"])
def test_endpoint_refused(url: str) -> None:
    with pytest.raises(InvalidRequest):
        check_endpoint(url)


def test_plain_http_beyond_loopback_only_where_the_admin_named_it() -> None:
    allowed = AllowList.of([r"^http://192\.0\.2\.2:8765$"])
    assert plain_http_allowed("http://192.0.2.2:8765", allowed)
    assert check_endpoint("http://192.0.2.2:8765", plain_http=True) == "http://192.0.2.2:8765"
    assert not plain_http_allowed("http://192.0.2.2:8766", allowed)
    assert not plain_http_allowed("http://192.0.2.2:8765", endpoint_allow_list(()))  # the default: https only
    assert not plain_http_allowed(None, allowed)
    with pytest.raises(InvalidRequest):
        check_endpoint("ftp://192.0.2.2:8765", plain_http=True)


def test_backoff_is_full_jitter_and_capped() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0)
    rng = random.Random(1)
    for attempt in range(1, 10):
        delays = [policy.backoff(attempt, rng) for _ in range(200)]
        cap = min(4.0, 0.5 * 2**attempt)
        assert all(0 <= d <= cap for d in delays)
        assert max(delays) > cap * 0.8  # spread over the whole range, not a fixed step


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def test_credentials_from_secret_hide_the_secret() -> None:
    creds = from_secret_data({"accessKeyId": _b64("AK1"), "accessKeySecret": _b64("s3cr3t-value")}, "pc-secret")
    assert (creds.access_key_id, creds.secret, creds.security_token) == ("AK1", "s3cr3t-value", None)
    assert "s3cr3t-value" not in repr(creds) and "s3cr3t-value" not in str(creds)


def test_credentials_missing_key_names_key_not_value() -> None:
    with pytest.raises(CredentialsError) as caught:
        from_secret_data({"accessKeyId": _b64("AK1"), "other": _b64("s3cr3t-value")}, "pc-secret")
    assert "accessKeySecret" in str(caught.value) and "pc-secret" in str(caught.value)
    assert "s3cr3t-value" not in str(caught.value)


def test_credentials_from_environment() -> None:
    env = {"HUAWEICLOUD_SDK_AK": "hw", "HUAWEICLOUD_SDK_SK": "sk"}
    assert from_environment("huawei", env).access_key_id == "hw"
    with pytest.raises(CredentialsError, match="ALIBABA_CLOUD_ACCESS_KEY_SECRET"):
        from_environment("alibaba", {"ALIBABA_CLOUD_ACCESS_KEY_ID": "x"})
