"""The chart's alert rules and Grafana dashboard, checked with the real tools: promtool (built from the Go module
proxy by hack/build-promtool.sh) checks and unit-tests the rules, parses every dashboard query, and every metric
they name is in the real operator's /metrics output."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import yaml
from kubernetes import client

from tests.emulator import Emulator
from tests.integration.test_people import free_port
from tests.integration.test_reconcile import setup_account
from tests.kube import REPO, wait_for
from tests.operator_process import OperatorProcess

PROMTOOL = REPO / ".cluster" / "bin" / "promtool"
HELM = REPO / ".cluster" / "bin" / "helm"
CHART = REPO / "charts" / "notebook-operator"
ALERTS = CHART / "files" / "alerts.yaml"
DASHBOARD = CHART / "files" / "dashboard.json"
# Grafana's own variables, as Grafana substitutes them before the query reaches Prometheus.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__range": "1h", "$__interval": "1m", "$namespace": ".*"}
METRIC = re.compile(r"\bnotebook_operator_[a-z_]+\b")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL.exists(), "make cluster-bins builds promtool"
    return subprocess.run([str(PROMTOOL), *args], capture_output=True, text=True, timeout=120, cwd=REPO)


def dashboard_queries() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    queries = [target["expr"] for panel in panels for target in panel.get("targets", [])]
    assert len(queries) >= 15
    return queries


def grafana_substituted(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def test_alert_rules_check_and_pass_their_unit_tests() -> None:
    checked = promtool("check", "rules", str(ALERTS))
    assert checked.returncode == 0 and "SUCCESS: 6 rules found" in checked.stdout, checked.stdout + checked.stderr
    tested = promtool("test", "rules", "tests/promtool/alerts_test.yaml")
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr
    alerts = {rule["alert"] for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]}
    tests = yaml.safe_load((REPO / "tests" / "promtool" / "alerts_test.yaml").read_text())["tests"]
    fired = {a["alertname"] for t in tests for a in t["alert_rule_test"] if a["exp_alerts"]}
    assert fired == alerts  # every alert has a case where it fires


def test_the_chart_renders_the_same_rules_and_dashboard() -> None:
    out = subprocess.run([str(HELM), "template", "r", str(CHART), "--set",
                          "prometheusRule.enabled=true,grafana.dashboard.enabled=true"],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    docs = {d["kind"]: d for d in yaml.safe_load_all(out) if d}
    assert docs["PrometheusRule"]["spec"] == yaml.safe_load(ALERTS.read_text())
    configmap = docs["ConfigMap"]
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(configmap["data"]["notebook-operator.json"]) == json.loads(DASHBOARD.read_text())
    plain = subprocess.run([str(HELM), "template", "r", str(CHART)], capture_output=True, text=True, check=True)
    assert "PrometheusRule" not in plain.stdout and "grafana_dashboard" not in plain.stdout  # off by default


def test_dashboard_queries_parse_and_name_metrics_the_operator_serves(
    api: client.ApiClient, namespace: str, fresh_cloud: Emulator, operator_env: dict[str, str], tmp_path: Path
) -> None:
    """Wall-time cap: 1 minute (about 15 s)."""
    queries = dashboard_queries()
    recorded = [{"record": f"dashboard:query_{i}", "expr": grafana_substituted(q)} for i, q in enumerate(queries)]
    rules = {"groups": [{"name": "dashboard", "rules": recorded}]}
    wrapped = tmp_path / "dashboard-rules.yaml"
    wrapped.write_text(yaml.safe_dump(rules))
    checked = promtool("check", "rules", str(wrapped))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    setup_account(api, namespace, fresh_cloud)
    port = free_port()
    args = ["--standalone", "--namespace", namespace, "--liveness", "", "--metrics-port", str(port)]
    op = OperatorProcess(args, operator_env, tmp_path / "operator.log")
    try:
        text = wait_for(lambda: _scrape(port, "notebook_operator_providerconfig_ready{"), timeout=30, what="metrics")
    finally:
        op.stop()
    served = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    served |= {re.sub(r"_(bucket|sum|count|created)$", "", name) for name in served}
    named: set[str] = set()
    for expr in queries + [rule["expr"] for g in yaml.safe_load(ALERTS.read_text())["groups"] for rule in g["rules"]]:
        named |= {re.sub(r"_(bucket|sum|count)$", "", m) for m in METRIC.findall(expr)}
    assert named and named <= served, f"not served: {sorted(named - served)}"


def _scrape(port: int, wanted: str) -> Any:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    except httpx.HTTPError:
        return None
    return text if wanted in text else None
