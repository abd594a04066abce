"""Warnings before stops, snoozes and chat notices, end to end: real API server, the emulator over HTTP, the
operator process, and a local webhook receiver standing in for each chat bot.

The bodies are checked against each bot's documented shape:
- DingTalk custom robot, markdown message and signing (timestamp in ms + "\\n" + secret, HmacSHA256 keyed with
  the secret, base64, URL-encoded, as &timestamp=&sign=): open.dingtalk.com/document/robots/custom-robot-access
  and .../customize-robot-security-settings;
- Feishu custom bot, text message {"msg_type": "text", "content": {"text"}}: open.feishu.cn/document/client-docs/
  bot-v3/add-custom-bot;
- WeCom group robot, markdown message {"msgtype": "markdown", "markdown": {"content"}}:
  developer.work.weixin.qq.com/document/path/91770;
- Slack incoming webhook {"text"}: api.slack.com/messaging/webhooks.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client

from notebook_devtools.localcluster import free_port
from notebook_operator.api.meta import GROUP, VERSION
from tests.emulator import PAI_KEY, Emulator
from tests.integration.test_culling import IDLE, events, policy, seed
from tests.integration.test_reconcile import setup_account, start_operator, status_of, wait_phase
from tests.kube import get, wait_for
from tests.operator_process import OperatorProcess

PAI_ACCOUNT = PAI_KEY[0]

FORMATS = ("dingtalk", "feishu", "wecom", "slack", "generic")
SIGN_SECRET = "SECtest-signing-secret"
SNOOZE = "cloudnotebooks.io/keep-running-until"


class Receiver:
    """A local HTTP server that records every webhook call: (path, query, JSON body)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, list[str]], dict[str, Any]]] = []
        calls = self.calls

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                calls.append((url.path, urllib.parse.parse_qs(url.query), json.loads(self.rfile.read(length))))
                answer = b'{"errcode": 0, "errmsg": "ok"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def of(self, path: str) -> list[tuple[dict[str, list[str]], dict[str, Any]]]:
        return [(query, body) for p, query, body in self.calls if p == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.server.shutdown()


def secret(api: client.ApiClient, namespace: str, name: str, **data: str) -> None:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    client.CoreV1Api(api).create_namespaced_secret(namespace, {"metadata": {"name": name}, "data": encoded})


def adopt(api: client.ApiClient, namespace: str, name: str, instance_id: str, labels: dict[str, str],
          spec: dict[str, Any] | None = None, annotations: dict[str, str] | None = None) -> None:  # fmt: skip
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "NotebookInstance",
            "metadata": {"name": name, "labels": labels, "annotations": annotations or {}},
            "spec": {"providerConfigRef": {"name": "pai"}, "instanceId": instance_id, **(spec or {})}}  # fmt: skip
    client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, namespace, "notebookinstances", body)


def annotate(api: client.ApiClient, namespace: str, name: str, annotations: dict[str, str | None]) -> None:
    client.CustomObjectsApi(api).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "notebookinstances", name, {"metadata": {"annotations": annotations}}
    )


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def text_of(fmt: str, body: dict[str, Any]) -> str:
    """The message text, read the way each bot reads its documented shape."""
    if fmt == "dingtalk":
        assert body["msgtype"] == "markdown" and set(body["markdown"]) == {"title", "text"}
        return str(body["markdown"]["title"] + "\n" + body["markdown"]["text"])
    if fmt == "feishu":
        assert body["msg_type"] == "text" and set(body["content"]) == {"text"}
        return str(body["content"]["text"])
    if fmt == "wecom":
        assert body["msgtype"] == "markdown" and set(body["markdown"]) == {"content"}
        return str(body["markdown"]["content"])
    if fmt == "slack":
        assert set(body) == {"text"}
        return str(body["text"])
    assert {"event", "namespace", "notebook", "owner", "reason", "at", "snooze"} <= set(body)
    return json.dumps(body)


@pytest.mark.slow(85)
def test_timer_stop_is_warned_once_across_a_restart_with_one_notice_per_format(
    api: client.ApiClient, namespace: str, fresh_cloud: Emulator, operator_env: dict[str, str], tmp_path: Path,
    receiver: Receiver,
) -> None:  # fmt: skip
    """Wall-time cap: 3 minutes (about 100 s)."""
    setup_account(api, namespace, fresh_cloud)
    secret(api, namespace, "sign", secret=SIGN_SECRET)
    for fmt in FORMATS:
        url = f"{receiver.url}/{fmt}" + ("?access_token=tok" if fmt == "dingtalk" else "")
        secret(api, namespace, f"hook-{fmt}", url=url)
        notify = {"webhookSecretRef": {"name": f"hook-{fmt}", "key": "url"}, "format": fmt}
        if fmt == "dingtalk":
            notify["signSecretRef"] = {"name": "sign", "key": "secret"}
        policy(api, namespace, f"team-{fmt}", fmt, maxRunningHours=100, notify=notify)
        instance_id = seed(fresh_cloud, f"nb-{fmt}")
        adopt(api, namespace, f"nb-{fmt}", instance_id, {"team": fmt, "owner": f"alice-{fmt}"})
    op = start_operator(namespace, operator_env, tmp_path / "operator-1.log")
    try:
        # The timer is set once the operator mirrors the notebooks: the full minute of warning lies ahead of it
        # however long the operator took to start (seen first with less to go, the stop would be pushed back).
        for fmt in FORMATS:
            wait_phase(api, namespace, f"nb-{fmt}", "Running", timeout=60)
        stop_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=70)
        for fmt in FORMATS:
            shutdown = {"shutdown": {"at": iso(stop_at), "warnMinutes": 1}}
            client.CustomObjectsApi(api).patch_namespaced_custom_object(
                GROUP, VERSION, namespace, "notebookinstances", f"nb-{fmt}", {"spec": shutdown}
            )
        for fmt in FORMATS:
            pending = wait_for(lambda f=fmt: status_of(api, namespace, f"nb-{f}").get("pendingStop"), timeout=60)
            assert pending["at"] == iso(stop_at) and pending["by"] == "spec.shutdown"
        assert time.time() < stop_at.timestamp() - 5, "warned too late for this test to mean anything"
        wait_for(lambda: all(receiver.of(f"/{f}") for f in FORMATS), timeout=15, what="warnings delivered")
    finally:
        op.stop()
    op = start_operator(namespace, operator_env, tmp_path / "operator-2.log")  # between warning and stop
    try:
        for fmt in FORMATS:  # the stop is due at stop_at, 70 s after the timer was set: wait from then
            left = max(0.0, stop_at.timestamp() - time.time())
            stopped = wait_phase(api, namespace, f"nb-{fmt}", "Stopped", timeout=left + 60)
            assert "pendingStop" not in stopped
            started = datetime.fromisoformat(stopped["lastAction"]["startedAt"].replace("Z", "+00:00"))
            assert started >= stop_at  # not a second earlier than announced
        wait_for(lambda: all(len(receiver.of(f"/{f}")) >= 2 for f in FORMATS), timeout=15, what="stop notices")
        time.sleep(3)  # anything more would show now
    finally:
        op.stop()
    for fmt in FORMATS:
        calls = receiver.of(f"/{fmt}")
        texts = [text_of(fmt, body) for _, body in calls]
        assert len(calls) == 2, texts  # exactly one warning and one stop notice, the restart notwithstanding
        warning, stop = texts
        assert "will be stopped" in warning or '"StopWarning"' in warning
        assert "on schedule" in stop or '"Stopped"' in stop
        for text in texts:
            assert f"nb-{fmt}" in text and namespace in text and f"alice-{fmt}" in text
            assert f"kubectl notebook snooze nb-{fmt} 2h -n {namespace}" in text
        assert iso(stop_at) in warning
        assert len(events(api, namespace, f"nb-{fmt}", "StopWarning")) == 1
    for query, _ in receiver.of("/dingtalk"):
        assert query["access_token"] == ["tok"]
        timestamp = query["timestamp"][0]
        digest = hmac.new(SIGN_SECRET.encode(), f"{timestamp}\n{SIGN_SECRET}".encode(), hashlib.sha256).digest()
        assert query["sign"] == [base64.b64encode(digest).decode()]  # parse_qs has undone the URL encoding
        assert abs(int(timestamp) / 1000 - time.time()) < 3600  # DingTalk refuses a timestamp an hour off
    logs = (tmp_path / "operator-1.log").read_text() + (tmp_path / "operator-2.log").read_text()
    assert receiver.url not in logs and "access_token" not in logs  # the webhook URL is a credential


@pytest.mark.slow(56)
def test_snooze_postpones_a_timer_stop_clamped_and_a_bad_value_blocks_nothing(
    api: client.ApiClient, namespace: str, fresh_cloud: Emulator, operator_env: dict[str, str], tmp_path: Path
) -> None:
    """Wall-time cap: 3 minutes (about 90 s)."""
    setup_account(api, namespace, fresh_cloud)
    now = datetime.now(UTC).replace(microsecond=0)
    due = now + timedelta(seconds=15)
    shutdown = {"at": iso(due), "maxSnoozeHours": 0.015}  # 54 s
    asked = iso(now + timedelta(hours=2))
    adopt(api, namespace, "snoozed", seed(fresh_cloud, "snoozed"), {}, {"shutdown": shutdown}, {SNOOZE: asked})
    adopt(api, namespace, "garbled", seed(fresh_cloud, "garbled"), {}, {"shutdown": shutdown}, {SNOOZE: "tomorrow"})
    op = start_operator(namespace, operator_env, tmp_path / "operator.log")
    try:
        snooze = wait_for(lambda: status_of(api, namespace, "snoozed").get("snooze"), timeout=30, what="snooze")
        assert snooze["requested"] == asked and "clamped" in snooze["message"] and "0.015 h" in snooze["message"]
        until = datetime.fromisoformat(snooze["until"].replace("Z", "+00:00"))
        seen = datetime.fromisoformat(snooze["seenAt"].replace("Z", "+00:00"))
        assert until == seen + timedelta(seconds=54)
        assert status_of(api, namespace, "snoozed")["nextShutdownAt"] == snooze["until"]
        stopped = wait_phase(api, namespace, "garbled", "Stopped", timeout=60)  # an unreadable snooze: no delay
        assert stopped["snooze"]["message"].startswith(f"annotation {SNOOZE}: 'tomorrow'")
        invalid = wait_for(lambda: events(api, namespace, "garbled", "InvalidSnooze"), timeout=10, what="InvalidSnooze")
        assert any(SNOOZE in m for m in invalid)
        assert status_of(api, namespace, "snoozed")["phase"] == "Running"  # past `at`, snoozed
        stopped = wait_phase(api, namespace, "snoozed", "Stopped", timeout=90)
        started = datetime.fromisoformat(stopped["lastAction"]["startedAt"].replace("Z", "+00:00"))
        assert started >= until and "snoozed until" in stopped["lastAction"]["reason"]
    finally:
        op.stop()


@pytest.mark.slow(184)
def test_a_cull_warning_is_withdrawn_when_busy_and_a_snooze_postpones_a_cull_clamped(
    api: client.ApiClient, namespace: str, fresh_cloud: Emulator, operator_env: dict[str, str], tmp_path: Path
) -> None:
    """Wall-time cap: 5 minutes (about 3.5 min: the emulator's metrics have one point a minute)."""
    setup_account(api, namespace, fresh_cloud)
    policy(api, namespace, "warned", "ml", cpuPercent=10, idleMinutes=3, windowMinutes=1, warnMinutes=2)
    policy(api, namespace, "napping", "nap", cpuPercent=10, idleMinutes=1, windowMinutes=1, maxSnoozeHours=0.04)
    instance_id = seed(fresh_cloud, "flip", utilization=IDLE)
    adopt(api, namespace, "flip", instance_id, {"team": "ml"})
    nap_id = seed(fresh_cloud, "nap", utilization=IDLE)  # idle from the start: culled after a minute or two...
    adopt(
        api,
        namespace,
        "nap",
        nap_id,
        {"team": "nap"},
        annotations={SNOOZE: iso(datetime.now(UTC) + timedelta(hours=1))},
    )
    op = start_operator(namespace, operator_env, tmp_path / "operator.log")
    try:
        # The snooze is held until 0.04 h (144 s) after it was first seen, not the hour asked. Read while it holds:
        # on a loaded machine the warning below may take longer than the clamp, after which it says "expired".
        snooze = wait_for(lambda: status_of(api, namespace, "nap").get("snooze"), timeout=60, what="snooze seen")
        assert "clamped" in snooze["message"] and "0.04 h for IdleCullerPolicy napping" in snooze["message"]
        until = datetime.fromisoformat(snooze["until"].replace("Z", "+00:00"))
        pending = wait_for(lambda: status_of(api, namespace, "flip").get("pendingStop"), timeout=150,
                           what="cull announced")  # fmt: skip
        assert pending["by"] == "IdleCullerPolicy warned" and pending["reason"].startswith("idle since")
        wait_for(lambda: events(api, namespace, "flip", "StopWarning"), timeout=10, what="StopWarning Event")
        fresh_cloud.admin.put(f"/instances/{instance_id}/utilization", json={"cpu": 90}).raise_for_status()
        wait_for(lambda: "pendingStop" not in status_of(api, namespace, "flip"), timeout=120, what="withdrawn")
        withdrawn = wait_for(lambda: events(api, namespace, "flip", "StopWarningWithdrawn"), timeout=10,
                             what="StopWarningWithdrawn Event")  # fmt: skip
        assert "busy again" in withdrawn[0]
        assert status_of(api, namespace, "flip")["phase"] == "Running"
        # ...and the snoozed one is culled once its clamped snooze is over
        stopped = wait_phase(api, namespace, "nap", "Stopped", timeout=200)
        culled_at = datetime.fromisoformat(stopped["lastAction"]["startedAt"].replace("Z", "+00:00"))
        assert culled_at >= until and stopped["stoppedBy"].startswith("notebook-operator: IdleCullerPolicy napping")
        idle_since = datetime.fromisoformat(stopped["idle"]["culledAt"].replace("Z", "+00:00"))
        assert idle_since >= until
        assert fresh_cloud.stops() == 1  # flip was never stopped
    finally:
        op.stop()


def metric(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


@pytest.mark.slow(25)
def test_cost_from_the_cloud_price_list_or_the_account_pricing_and_savings_in_money(
    api: client.ApiClient, namespace: str, fresh_cloud: Emulator, operator_env: dict[str, str], tmp_path: Path,
    receiver: Receiver,
) -> None:  # fmt: skip
    """Wall-time cap: 2 minutes (about 40 s). Also: the Culled notice goes to the deciding policy's webhook, a timer
    stop of a notebook no policy selects to the account's default."""
    setup_account(api, namespace, fresh_cloud)
    secret(api, namespace, "hooks", policy=f"{receiver.url}/policy", account=f"{receiver.url}/account")
    client.CustomObjectsApi(api).patch_namespaced_custom_object(GROUP, VERSION, namespace, "providerconfigs", "pai", {
        "spec": {"pricing": {"currency": "CNY", "perHour": {"ecs.c6.large": 3600}},
                 "notify": {"webhookSecretRef": {"name": "hooks", "key": "account"}, "format": "slack"}}})  # fmt: skip
    timed = fresh_cloud.seed(cloud="pai-dsw", account=PAI_ACCOUNT, name="timed", attrs={"EcsSpec": "ecs.c6.large"})
    due = iso(datetime.now(UTC) + timedelta(seconds=10))
    adopt(api, namespace, "timed", timed["id"], {"owner": "bob"}, {"shutdown": {"at": due}})
    listed = fresh_cloud.seed(cloud="pai-dsw", account=PAI_ACCOUNT, name="listed", attrs={"EcsSpec": "ecs.c6.xlarge"})
    capped = fresh_cloud.seed(cloud="pai-dsw", account=PAI_ACCOUNT, name="capped", attrs={"EcsSpec": "ecs.c6.large"})
    notify = {"webhookSecretRef": {"name": "hooks", "key": "policy"}, "format": "generic", "ownerLabel": "team"}
    policy(api, namespace, "cap", "cap", maxRunningHours=0.005, notify=notify)  # 18 s
    adopt(api, namespace, "listed", listed["id"], {"team": "other"})
    adopt(api, namespace, "capped", capped["id"], {"team": "cap"})
    port = free_port()
    args = ["--standalone", "--namespace", namespace, "--liveness", "", "--metrics-port", str(port)]
    op = OperatorProcess(args, operator_env, tmp_path / "operator.log")
    try:
        cost = wait_for(lambda: status_of(api, namespace, "listed").get("cost"), timeout=30, what="cost")
        wait_phase(api, namespace, "timed", "Stopped", timeout=60)
        # ecs.c6.xlarge as the emulator's ListEcsSpecs lists it (Price 0.78, Currency CNY)
        assert (cost["perHour"], cost["currency"], cost["source"]) == (0.78, "CNY", "cloud price list")
        wait_phase(api, namespace, "capped", "Stopped", timeout=60)
        capped_cost = status_of(api, namespace, "capped")["cost"]
        assert (capped_cost["perHour"], capped_cost["source"]) == (3600, "ProviderConfig pricing")  # overrides
        assert capped_cost["accumulated"] > 0 and "countedAt" not in capped_cost
        savings = wait_for(lambda: (get(api, "IdleCullerPolicy", namespace, "cap").get("status") or {})
                           .get("estimatedSavings"), timeout=30, what="savings")  # fmt: skip
        assert savings["CNY"] > 0

        def scraped() -> str | None:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
            return text if metric(text, "notebook_operator_savings_total", policy="cap") else None

        text = wait_for(scraped, timeout=30, what="savings metric")
        assert metric(text, "notebook_operator_cost_per_hour", namespace=namespace, currency="CNY") == 0.78
        assert metric(text, "notebook_operator_notebooks", namespace=namespace, phase="Stopped") == 2
    finally:
        op.stop()
    culled = [body for _, body in receiver.of("/policy")]
    assert [(b["event"], b["notebook"], b["owner"]) for b in culled] == [("Culled", "capped", "cap")]
    assert "maxRunningHours" in culled[0]["reason"]
    timer = [body["text"] for _, body in receiver.of("/account")]
    assert len(timer) == 1 and "timed" in timer[0] and "Owner: bob" in timer[0] and "on schedule" in timer[0]


@pytest.mark.slow(40)
def test_a_snooze_lifts_the_native_culler_and_puts_it_back_after(
    api: client.ApiClient, namespace: str, fresh_cloud: Emulator, operator_env: dict[str, str], tmp_path: Path
) -> None:
    """Wall-time cap: 2 minutes (about 60 s). PAI-DSW's IdleInstanceCuller knows no snooze: the operator removes
    it while the notebook is snoozed (the operator holds the idle culls) and creates it again when the snooze ends."""
    setup_account(api, namespace, fresh_cloud)
    policy(api, namespace, "native", "ml", cpuPercent=10, idleMinutes=30, windowMinutes=1, enforcement="Native",
           warnMinutes=5, maxSnoozeHours=0.01)  # fmt: skip
    instance_id = seed(fresh_cloud, "native")
    adopt(api, namespace, "native", instance_id, {"team": "ml"})
    op = start_operator(namespace, operator_env, tmp_path / "operator.log")
    try:
        wait_for(lambda: fresh_cloud.instance(instance_id)["culler"], timeout=30, what="native culler")
        idle = wait_for(lambda: status_of(api, namespace, "native").get("idle", {}).get("warning"), timeout=15)
        assert "no warning" in idle and "native" in idle  # the cloud stops without notice: the status says so
        annotate(api, namespace, "native", {SNOOZE: iso(datetime.now(UTC) + timedelta(hours=1))})
        wait_for(lambda: not fresh_cloud.instance(instance_id)["culler"], timeout=30, what="culler lifted")
        # written by the pass that lifted it, after the cloud call
        snooze = wait_for(lambda: status_of(api, namespace, "native").get("snooze"), timeout=10, what="status.snooze")
        until = datetime.fromisoformat(snooze["until"].replace("Z", "+00:00"))
        assert "clamped" in snooze["message"]
        wait_for(lambda: fresh_cloud.instance(instance_id)["culler"], timeout=90, what="culler put back")
        assert datetime.now(UTC) >= until - timedelta(seconds=2)  # not before the snooze ended
        assert fresh_cloud.instance(instance_id)["culler"]["MaxIdleTimeInMinutes"] == 30
        assert status_of(api, namespace, "native")["phase"] == "Running"
    finally:
        op.stop()
