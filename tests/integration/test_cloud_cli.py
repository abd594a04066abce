"""`notebook-operator cloud` and `adopt` against the emulator; adopt's output applied to the real API server."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml
from kubernetes import client

from notebook_operator.api.meta import GROUP, VERSION
from tests.emulator import HW_KEY, PAI_KEY, PROJECT, Emulator


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
