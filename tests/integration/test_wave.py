"""A wave of due stops larger than what one poll pass may spend: against the real API server and the emulator over
HTTP. The pass sends what the account's rate limit allows within one poll interval (less the listing), the rest is
queued in status and in a metric and drains in the next passes, every stop exactly once, while another
notebook's out-of-band change is still mirrored within the interval. A spec pass meanwhile observes from the
account's listing instead of a GET."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from kubernetes import client

from notebook_devtools.localcluster import free_port
from notebook_operator.api.meta import GROUP, VERSION
from tests.emulator import PAI_KEY, Emulator
from tests.integration.test_batched_stops import _account_ready
from tests.integration.test_people import metric
from tests.integration.test_reconcile import condition, notebook, setup_account, status_of, wait_phase
from tests.kube import wait_for
from tests.operator_process import OperatorProcess

INTERVAL_S = 5
RATE = 1  # requests per second: 5 calls per interval, 2 of them the listing's share (one page, and one more)
PER_PASS = RATE * INTERVAL_S - 2
WAVE = 8


def test_a_wave_larger_than_a_pass_drains_in_turn_while_other_changes_are_mirrored(
    api: client.ApiClient, namespace: str, fresh_cloud: Emulator, operator_env: dict[str, str], tmp_path: Path
) -> None:
    """Wall-time cap: 2 minutes (about 35 s)."""
    setup_account(api, namespace, fresh_cloud)
    client.CustomObjectsApi(api).patch_namespaced_custom_object(GROUP, VERSION, namespace, "providerconfigs", "pai", {
        "spec": {"rateLimit": RATE, "pollIntervalSeconds": INTERVAL_S, "batchSize": 1}})  # fmt: skip
    ids = {f"w{k}": fresh_cloud.seed(cloud="pai-dsw", account=PAI_KEY[0], name=f"w{k}")["id"] for k in range(WAVE)}
    bystander = fresh_cloud.seed(cloud="pai-dsw", account=PAI_KEY[0], name="bystander")["id"]
    adopted = fresh_cloud.seed(cloud="pai-dsw", account=PAI_KEY[0], name="adopted")["id"]
    port = free_port()
    args = ["--standalone", "--namespace", namespace, "--liveness", "", "--metrics-port", str(port)]
    op = OperatorProcess(args, operator_env, tmp_path / "operator.log")
    try:
        _account_ready(api, namespace)
        # Observe: no spec passes; the timers are the poll passes' work (timers are enforced on observed ones).
        due = (datetime.now(UTC) + timedelta(seconds=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
        for name, instance_id in ids.items():
            notebook(api, namespace, name, {"instanceId": instance_id, "managementPolicy": "Observe",
                                            "shutdown": {"at": due}})  # fmt: skip
        notebook(api, namespace, "bystander", {"instanceId": bystander, "managementPolicy": "Observe"})
        wait_phase(api, namespace, "bystander", "Running", timeout=20)
        # A Manage notebook's spec pass observes from the account's fresh listing: no GET at the rate limit.
        notebook(api, namespace, "adopted", {"instanceId": adopted})
        wait_for(lambda: status_of(api, namespace, "adopted").get("observedGeneration") == 1, timeout=20,
                 what="the adopted notebook's spec pass")  # fmt: skip
        gets = fresh_cloud.admin.get("/journal", params={"route": "pai-dsw:GetInstance", "instance": adopted})
        assert gets.json()["entries"] == []

        def queued() -> list[str]:
            return [n for n in ids if (status_of(api, namespace, n).get("lastAction") or {}).get("state") == "Queued"]

        waiting = wait_for(lambda: queued() or None, timeout=30, what="a pass that queued the rest of the wave")
        assert len(waiting) >= WAVE - 2 * PER_PASS  # at most two passes' worth could have gone out before this look
        record = status_of(api, namespace, waiting[0])["lastAction"]
        assert record["action"] == "stop" and "queued" in record["message"]
        gauge = wait_for(lambda: metric(httpx.get(f"http://127.0.0.1:{port}/metrics").text,
                                        "notebook_operator_actions_queued", namespace=namespace, provider="pai-dsw"),
                         timeout=10, what="the queued gauge")  # fmt: skip
        assert 0 < gauge < WAVE
        # During the wave: a change made in the cloud is mirrored within the interval (and the listing's second).
        fresh_cloud.admin.put(f"/instances/{bystander}/status", json={"status": "Stopped"}).raise_for_status()
        changed = time.monotonic()
        wait_phase(api, namespace, "bystander", "Stopped", timeout=INTERVAL_S + 3)
        assert time.monotonic() - changed <= INTERVAL_S + 3
        for name in ids:
            status = wait_phase(api, namespace, name, "Stopped", timeout=60)
            assert status["lastAction"]["state"] == "Succeeded"
        wait_for(lambda: metric(httpx.get(f"http://127.0.0.1:{port}/metrics").text,
                                "notebook_operator_actions_queued", namespace=namespace, provider="pai-dsw") == 0,
                 timeout=3 * INTERVAL_S, what="an empty queue")  # fmt: skip
    finally:
        op.stop()
    # Exactly once each, and never more in one pass than the pass may spend.
    assert {name: fresh_cloud.stops(instance_id) for name, instance_id in ids.items()} == dict.fromkeys(ids, 1)
    journal = fresh_cloud.admin.get("/journal", params={"route": "pai-dsw:StopInstances"}).json()["entries"]
    sent = sorted(e["at"] for e in journal if e["instance"])
    passes: list[list[float]] = []
    for at in sent:  # a pass's stops go out within a second or two; passes are INTERVAL_S apart
        if passes and at - passes[-1][0] < INTERVAL_S / 2:
            passes[-1].append(at)
        else:
            passes.append([at])
    assert len(passes) >= -(-WAVE // PER_PASS) and all(len(p) <= PER_PASS for p in passes), passes


ADOPTED = 300
ADOPT_LEAD_S = 75  # the apply, then the due time: the adoption's tag writes are still pending when it comes


def test_three_hundred_adopted_notebooks_due_together_are_stopped_on_time_while_their_tags_wait(
    api: client.ApiClient, namespace: str, fresh_cloud: Emulator, operator_env: dict[str, str], tmp_path: Path
) -> None:
    """Wall-time cap: 4 minutes (asserted). 300 adopted (Manage) notebooks applied at once with the same shutdown.at,
    on an account with rateLimit 2 and a 3 s interval: each pass has two calls for actions and housekeeping, so the
    300 ownership-tag writes (one UpdateInstanceLabels each) take minutes. Every stop goes out within 30 s of the
    due time, exactly once, in batches, while tag writes are still pending: housekeeping spends only what the stops
    leave, and no stop waits behind a tag write. The spec passes of the 300 are done before the due time."""
    began = time.monotonic()
    setup_account(api, namespace, fresh_cloud)
    client.CustomObjectsApi(api).patch_namespaced_custom_object(GROUP, VERSION, namespace, "providerconfigs", "pai", {
        "spec": {"rateLimit": 2, "pollIntervalSeconds": 3}})  # fmt: skip
    ids = fresh_cloud.seed_many([{"cloud": "pai-dsw", "account": PAI_KEY[0], "name": f"a{k:03d}"}
                                 for k in range(ADOPTED)])  # fmt: skip
    op = OperatorProcess(["--standalone", "--namespace", namespace, "--liveness", ""], operator_env,
                         tmp_path / "operator.log")  # fmt: skip
    try:
        _account_ready(api, namespace)
        due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=ADOPT_LEAD_S)
        at = due.strftime("%Y-%m-%dT%H:%M:%SZ")
        with ThreadPoolExecutor(16) as pool:  # one apply of 300 objects
            list(
                pool.map(
                    lambda k: notebook(api, namespace, f"a{k:03d}", {"instanceId": ids[k], "shutdown": {"at": at}}),
                    range(ADOPTED),
                )
            )
        applied = time.monotonic()

        def spec_passes_done() -> bool:
            items = client.CustomObjectsApi(api).list_namespaced_custom_object(
                GROUP, VERSION, namespace, "notebookinstances")["items"]  # fmt: skip
            return sum(1 for i in items if (i.get("status") or {}).get("observedGeneration") == 1) == ADOPTED

        # At rateLimit 2 (a fifth of the default) a spec pass that finds no fresh listing waits its turn for a GET.
        wait_for(spec_passes_done, timeout=ADOPT_LEAD_S - 10, interval=1, what="the 300 spec passes")
        assert time.time() < due.timestamp() - 5, f"the spec passes took {time.monotonic() - applied:.0f}s"
        wait_for(lambda: fresh_cloud.stops() == ADOPTED, timeout=ADOPT_LEAD_S + 45, interval=1,
                 what="every due stop")  # fmt: skip
        pc = client.CustomObjectsApi(api).get_namespaced_custom_object(GROUP, VERSION, namespace, "providerconfigs",
                                                                        "pai")  # fmt: skip
        backlog = condition(pc["status"], "Ready")["message"]
    finally:
        op.stop()
    journal = fresh_cloud.admin.get("/journal").json()["entries"]
    stops = [e for e in journal if e["route"] in ("pai-dsw:StopInstance", "pai-dsw:StopInstances") and e["instance"]]
    tags = [e for e in journal if e["route"] == "pai-dsw:UpdateInstanceLabels"]
    # Exactly once each, batched, and every one within 30 s of the due time.
    assert {e["instance"] for e in stops} == set(ids) and len(stops) == ADOPTED
    assert all(e["route"] == "pai-dsw:StopInstances" for e in stops)
    last_stop = max(e["at"] for e in stops)
    assert last_stop - due.timestamp() <= 30, f"the last stop went out {last_stop - due.timestamp():.1f}s late"
    # The tags were still pending when the wave went out: the stops did not wait for them.
    tagged_before = sum(1 for e in tags if e["at"] < last_stop)
    assert tagged_before < ADOPTED // 2, f"{tagged_before} tag writes went before the wave's last stop"
    assert "tag writes wait" in backlog, backlog
    assert time.monotonic() - began < 240
