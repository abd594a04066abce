"""`notebook-operator cloud` and `adopt` against the emulator; adopt's output applied to the real API server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from kubernetes import client

from notebook_operator.api.meta import GROUP, VERSION
from tests.emulator import HW_KEY, PAI_KEY, PROJECT, Emulator
from tests.kube import delete_cluster_provider_config


def cli(emulator: Emulator, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ALIBABA_CLOUD_ACCESS_KEY_ID": PAI_KEY[0],
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": PAI_KEY[1],
        "HUAWEICLOUD_SDK_AK": HW_KEY[0],
        "HUAWEICLOUD_SDK_SK": HW_KEY[1],
        "HUAWEICLOUD_SDK_PROJECT_ID": PROJECT,
    }
    return subprocess.run(
        [sys.executable, "-m", "notebook_operator", *args, "--endpoint", emulator.url],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_cloud_list_returns_every_instance_across_pages(emulator: Emulator) -> None:
    emulator.seed_many([{"cloud": "pai-dsw", "account": PAI_KEY[0], "name": f"nb-{n:03d}"} for n in range(250)])
    result = cli(emulator, "cloud", "list", "--provider", "pai-dsw", "--region", "cn-hangzhou", "-o", "json")
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert len(listed) == 250 and len({i["id"] for i in listed}) == 250
    assert "250 in all" in result.stderr  # the progress count
    assert emulator.calls()["pai-dsw:ListInstances"] == 3
    table = cli(emulator, "cloud", "list", "--provider", "pai-dsw", "--region", "cn-hangzhou")
    assert table.stdout.splitlines()[0].split()[:3] == ["ID", "NAME", "STATUS"]
    assert len(table.stdout.splitlines()) == 251


def test_cloud_get_stop_start(emulator: Emulator) -> None:
    seeded = emulator.seed(cloud="modelarts", account=PROJECT, name="nb")
    base = ["--provider", "modelarts", "--region", "cn-north-4", "-o", "yaml"]
    stopped = cli(emulator, "cloud", "stop", *base, seeded["id"])
    assert stopped.returncode == 0, stopped.stderr
    assert yaml.safe_load(stopped.stdout)[0]["phase"] == "Stopped"
    started = cli(emulator, "cloud", "start", *base, seeded["id"])
    assert yaml.safe_load(started.stdout)[0]["cloud_status"] == "RUNNING"
    missing = cli(emulator, "cloud", "get", *base, "no-such-id")
    assert missing.returncode == 1 and "NotFound" not in missing.stdout and "ModelArts.6404" in missing.stderr


def test_cloud_bad_credentials_message(emulator: Emulator) -> None:
    env = {**os.environ, "ALIBABA_CLOUD_ACCESS_KEY_ID": PAI_KEY[0], "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "wrong-one"}
    result = subprocess.run(
        [sys.executable, "-m", "notebook_operator", "cloud", "list", "--provider", "pai-dsw", "--region", "cn-hangzhou",
         "--endpoint", emulator.url], env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1 and "SignatureDoesNotMatch" in result.stderr
    assert "wrong-one" not in result.stderr + result.stdout


def test_adopt_output_applies_cleanly(emulator: Emulator, api: client.ApiClient, namespace: str) -> None:
    names = ["Alice's GPU", "alice-s-gpu", "bob", "bob", "x" * 80]
    emulator.seed_many([{"cloud": "pai-dsw", "account": PAI_KEY[0], "name": n} for n in names])
    gone = emulator.seed(cloud="pai-dsw", account=PAI_KEY[0], name="leaving", status="Deleting")
    result = cli(
        emulator, "adopt", "--provider", "pai-dsw", "--region", "cn-hangzhou", "-n", namespace,
        "--provider-config", "pai",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    docs = list(yaml.safe_load_all(result.stdout))
    assert len(docs) == 5 and gone["id"] not in result.stdout
    custom = client.CustomObjectsApi(api)
    for doc in docs:
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "notebookinstances", doc, field_validation="Strict"
        )
    stored = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "notebookinstances")["items"]
    assert {i["spec"]["instanceId"] for i in stored} == {d["spec"]["instanceId"] for d in docs}
    assert all(i["spec"]["managementPolicy"] == "Observe" for i in stored)


def _checks(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, object]]:
    return {c["operation"]: c for c in json.loads(result.stdout)["checks"]}


def test_cloud_check_passes_and_says_what_each_read_is_for(emulator: Emulator) -> None:
    emulator.seed(cloud="pai-dsw", account=PAI_KEY[0], name="nb", gpu=1)
    result = cli(emulator, "cloud", "check", "--provider", "pai-dsw", "--region", "cn-hangzhou", "--output", "json")
    assert result.returncode == 0, result.stderr
    checks = _checks(result)
    assert list(checks) == ["ListInstances", "GetInstance", "ListEcsSpecs", "GetInstanceMetrics",
                            "GetIdleInstanceCuller", "GetInstanceShutdownTimer"]  # fmt: skip
    assert all(c["allowed"] is True for c in checks.values())
    assert checks["ListInstances"]["required"] is True and checks["GetInstanceMetrics"]["required"] is False
    assert "Operator" in str(checks["GetInstanceMetrics"]["usedFor"])
    writes = {k: v for k, v in emulator.calls().items() if not k.split(":")[1].startswith(("List", "Get"))}
    assert writes == {}  # read-only
    table = cli(emulator, "cloud", "check", "--provider", "pai-dsw", "--region", "cn-hangzhou")
    assert table.stdout.splitlines()[0].split()[:3] == ["OPERATION", "ALLOWED", "CODE"]


def test_cloud_check_names_a_refused_permission(emulator: Emulator) -> None:
    emulator.seed(cloud="modelarts", account=PROJECT, name="nb")
    emulator.admin.put("/permissions", json={"accessKeyId": HW_KEY[0], "deny": ["modelarts:ShowLease"]})
    base = ["cloud", "check", "--provider", "modelarts", "--region", "cn-north-4", "-o", "json"]
    optional_refused = cli(emulator, *base)
    assert optional_refused.returncode == 0  # ShowLease is only needed for Native enforcement
    lease = _checks(optional_refused)["ShowLease"]
    assert (lease["allowed"], lease["code"], lease["required"]) == (False, "APIGW.0302", False)
    emulator.admin.put("/permissions", json={"accessKeyId": HW_KEY[0], "deny": ["modelarts:ListNotebooks"]})
    refused = cli(emulator, *base)
    assert refused.returncode == 1
    checks = _checks(refused)
    assert checks["ListNotebooks"]["allowed"] is False and checks["ListNotebooks"]["code"] == "APIGW.0302"
    assert checks["ShowNotebook"]["allowed"] == "skipped"


def test_cloud_check_on_an_empty_account_and_without_credentials(emulator: Emulator) -> None:
    result = cli(emulator, "cloud", "check", "--provider", "pai-dsw", "--region", "cn-hangzhou", "-o", "json")
    assert result.returncode == 0
    checks = _checks(result)
    assert checks["GetInstance"]["allowed"] == "skipped" and "no instance" in str(checks["GetInstance"]["message"])
    assert checks["ListEcsSpecs"]["allowed"] is True  # needs no instance
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALIBABA_CLOUD", "HUAWEICLOUD"))}
    missing = subprocess.run(
        [sys.executable, "-m", "notebook_operator", "cloud", "check", "--provider", "pai-dsw", "--region",
         "cn-hangzhou", "--endpoint", emulator.url], env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert missing.returncode == 2 and "ALIBABA_CLOUD_ACCESS_KEY_ID" in missing.stderr
    usage = subprocess.run([sys.executable, "-m", "notebook_operator", "cloud", "check", "--provider", "aws"],
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert usage.returncode == 2
    wrong = {**os.environ, "ALIBABA_CLOUD_ACCESS_KEY_ID": PAI_KEY[0], "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "wrong"}
    refused = subprocess.run(
        [sys.executable, "-m", "notebook_operator", "cloud", "check", "--provider", "pai-dsw", "--region",
         "cn-hangzhou", "--endpoint", emulator.url, "-o", "json"],
        env=wrong, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert refused.returncode == 1
    assert _checks(refused)["ListInstances"]["code"] == "SignatureDoesNotMatch"


def test_cloud_check_from_a_provider_config_or_a_cluster_provider_config(
    emulator: Emulator, api: client.ApiClient, namespace: str, kubeconfig: Path
) -> None:
    """`cloud check --from KIND/NAME`: the account an object describes, with the credentials it names, read with the
    caller's kubeconfig - no credentials in the environment."""
    from tests.integration.test_reconcile import setup_account

    emulator.seed(cloud="pai-dsw", account=PAI_KEY[0], name="checked")
    setup_account(api, namespace, emulator)  # ProviderConfig "pai" with its Secret
    name = f"check-{namespace}"
    client.CustomObjectsApi(api).create_cluster_custom_object(GROUP, VERSION, "clusterproviderconfigs", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "ClusterProviderConfig", "metadata": {"name": name},
        "spec": {"provider": "pai-dsw", "region": "cn-hangzhou", "endpoint": emulator.url,
                 "credentialsSecretRef": {"namespace": namespace, "name": "pai"}}})  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALIBABA_CLOUD", "HUAWEICLOUD"))}
    env["KUBECONFIG"] = str(kubeconfig)
    base = [sys.executable, "-m", "notebook_operator", "cloud", "check", "-o", "json"]
    try:
        for source in (["--from", "providerconfig/pai", "-n", namespace], ["--from", f"nbcpc/{name}"]):
            result = subprocess.run([*base, *source], env=env, capture_output=True, text=True, timeout=120)
            assert result.returncode == 0, result.stderr
            checks = _checks(result)
            assert checks["ListInstances"]["allowed"] is True and checks["GetInstance"]["allowed"] is True
        missing = subprocess.run([*base, "--from", "providerconfig/nope", "-n", namespace], env=env,
                                 capture_output=True, text=True, timeout=120)  # fmt: skip
        assert missing.returncode == 2 and f"ProviderConfig {namespace}/nope: not found" in missing.stderr
        bad = subprocess.run([*base, "--from", "secret/pai"], env=env, capture_output=True, text=True, timeout=120)
        assert bad.returncode == 2 and "providerconfig/NAME" in bad.stderr
    finally:
        delete_cluster_provider_config(api, name)


def test_cloud_list_shows_who_owns_each_instance(emulator: Emulator) -> None:
    tags = {"cloudnotebooks.io:cluster": "c-1", "cloudnotebooks.io:namespace": "ml", "cloudnotebooks.io:name": "alice"}
    owned = [{"Key": k, "Value": v} for k, v in tags.items()]
    emulator.seed(cloud="pai-dsw", account=PAI_KEY[0], name="owned-by-alice", attrs={"Labels": owned})
    emulator.seed(cloud="pai-dsw", account=PAI_KEY[0], name="owned-by-nobody")
    table = cli(emulator, "cloud", "list", "--provider", "pai-dsw", "--region", "cn-hangzhou", "--name", "owned-by-")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[-1] == "OWNER"
    rows = {line.split()[1]: line for line in lines[1:]}
    assert rows["owned-by-alice"].endswith(" c-1/ml/alice")
    assert "c-1/" not in rows["owned-by-nobody"]  # no ownership tags: an empty owner
