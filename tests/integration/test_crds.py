"""The CRDs on a real API server: install, accept the examples, reject bad manifests naming the field."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from notebook_operator.api.meta import GROUP, VERSION
from tests.kube import PLURALS, REPO, create, get, load_manifests

EXAMPLES = sorted((REPO / "examples").glob("*/*.yaml"))
Mutation = Callable[[dict[str, Any]], None]


def example(cloud: str, kind: str) -> dict[str, Any]:
    for doc in load_manifests(REPO / "examples" / cloud / f"{kind.lower()}.yaml"):
        if doc["kind"] == kind:
            return doc
    raise LookupError(f"no {kind} in examples/{cloud}")


def test_crds_established(api: client.ApiClient, crds: list[str]) -> None:
    ext = client.ApiextensionsV1Api(api)
    for name in crds:
        crd = ext.read_custom_resource_definition(name)
        assert crd.spec.versions[0].subresources.status == {}
        assert crd.spec.names.short_names
    assert set(crds) == {f"{plural}.{GROUP}" for plural in PLURALS.values()}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_examples_are_accepted(api: client.ApiClient, namespace: str, path: Any) -> None:
    for doc in load_manifests(path):
        created = create(api, doc, namespace)
        assert created["metadata"]["name"] == doc["metadata"]["name"]


def _set(path: str, value: Any) -> Mutation:
    def mutate(obj: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        node = obj
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
        node[leaf] = value

    return mutate


def _del(path: str) -> Mutation:
    def mutate(obj: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        node = obj
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        del node[leaf]

    return mutate


def _all(*mutations: Mutation) -> Mutation:
    def mutate(obj: dict[str, Any]) -> None:
        for m in mutations:
            m(obj)

    return mutate


PAI_PC = ("pai-dsw", "ProviderConfig")
MA_PC = ("modelarts", "ProviderConfig")
PAI_NI = ("pai-dsw", "NotebookInstance")
ADOPT_NI = ("modelarts-devenv", "NotebookInstance")
MA_ICP = ("modelarts", "IdleCullerPolicy")
PAI_ICP = ("pai-dsw", "IdleCullerPolicy")
PAI_SNAP = ("pai-dsw", "NotebookSnapshot")
MA_SNAP = ("modelarts", "NotebookSnapshot")

# (id, base example, mutation, text the API server's message must contain: the field, and a reason)
INVALID: list[tuple[str, tuple[str, str], Mutation, list[str]]] = [
    ("pc-provider-enum", PAI_PC, _set("spec.provider", "aws"), ["spec.provider", "Unsupported value"]),
    ("pc-region-pattern", PAI_PC, _set("spec.region", "Hangzhou"), ["spec.region"]),
    ("pc-region-missing", PAI_PC, _del("spec.region"), ["spec.region", "Required"]),
    ("pc-endpoint-scheme", PAI_PC, _set("spec.endpoint", "ftp://host"), ["spec.endpoint"]),
    ("pc-huawei-needs-project", MA_PC, _del("spec.projectId"), ["spec.projectId", "projectId is required"]),
    ("pc-poll-zero", PAI_PC, _set("spec.pollIntervalSeconds", 0), ["spec.pollIntervalSeconds"]),
    ("pc-poll-type", PAI_PC, _set("spec.pollIntervalSeconds", "30s"), ["spec.pollIntervalSeconds"]),
    ("pc-rate-zero", PAI_PC, _set("spec.rateLimit", 0), ["spec.rateLimit"]),
    (
        "pc-secret-missing",
        PAI_PC,
        _del("spec.credentialsSecretRef"),
        ["spec", "exactly one of spec.credentialsSecretRef or spec.oidc must be set"],
    ),
    (
        "pc-secret-and-oidc",
        PAI_PC,
        _set("spec.oidc", {"roleArn": "acs:ram::1:role/r", "oidcProviderArn": "acs:ram::1:oidc-provider/p"}),
        ["spec", "exactly one of spec.credentialsSecretRef or spec.oidc must be set"],
    ),
    (
        "pc-rrsa-needs-role",
        PAI_PC,
        _all(_del("spec.credentialsSecretRef"), _set("spec.oidc", {"oidcProviderArn": "acs:ram::1:oidc-provider/p"})),
        ["spec.oidc", "oidc.roleArn and oidc.oidcProviderArn are required for pai-dsw"],
    ),
    (
        "pc-rrsa-duration-max",
        PAI_PC,
        _all(
            _del("spec.credentialsSecretRef"),
            _set(
                "spec.oidc",
                {
                    "roleArn": "acs:ram::1:role/r",
                    "oidcProviderArn": "acs:ram::1:oidc-provider/p",
                    "durationSeconds": 50000,
                },
            ),
        ),
        ["spec.oidc", "oidc.durationSeconds is at most 43200 for pai-dsw"],
    ),
    (
        "pc-federation-needs-idp",
        MA_PC,
        _all(_del("spec.credentialsSecretRef"), _set("spec.oidc", {"audience": "client-id"})),
        ["spec.oidc", "oidc.idpId is required for the Huawei Cloud providers"],
    ),
    (
        "pc-oidc-duration-min",
        MA_PC,
        _all(
            _del("spec.credentialsSecretRef"),
            _set("spec.oidc", {"idpId": "idp", "audience": "c", "durationSeconds": 60}),
        ),
        ["spec.oidc.durationSeconds"],
    ),
    (
        "pc-federation-needs-audience",
        MA_PC,
        _all(_del("spec.credentialsSecretRef"), _set("spec.oidc", {"idpId": "idp"})),
        ["spec.oidc", "oidc.audience (the identity provider's client id) is required"],
    ),
    ("ni-ref-kind-enum", PAI_NI, _set("spec.providerConfigRef.kind", "Secret"), ["spec.providerConfigRef.kind"]),
    (
        "pc-secret-empty-name",
        PAI_PC,
        _set("spec.credentialsSecretRef.name", ""),
        ["spec.credentialsSecretRef.name"],
    ),
    (
        "ni-both-id-and-template",
        PAI_NI,
        _set("spec.instanceId", "dsw-1"),
        ["spec", "exactly one of spec.instanceId"],
    ),
    ("ni-neither", PAI_NI, _del("spec.template"), ["spec", "exactly one of spec.instanceId"]),
    ("ni-ref-missing", PAI_NI, _del("spec.providerConfigRef"), ["spec.providerConfigRef", "Required"]),
    (
        "ni-desired-enum",
        PAI_NI,
        _set("spec.desiredState", "Paused"),
        ["spec.desiredState", "Unsupported value"],
    ),
    ("ni-policy-enum", PAI_NI, _set("spec.managementPolicy", "Ignore"), ["spec.managementPolicy"]),
    ("ni-deletion-enum", PAI_NI, _set("spec.deletionPolicy", "Keep"), ["spec.deletionPolicy"]),
    (
        "ni-observe-needs-id",
        PAI_NI,
        _all(_set("spec.managementPolicy", "Observe"), _del("spec.deletionPolicy")),
        ["spec.managementPolicy", "Observe needs spec.instanceId"],
    ),
    (
        "ni-observe-no-delete",
        ADOPT_NI,
        _all(_set("spec.managementPolicy", "Observe"), _set("spec.deletionPolicy", "Delete")),
        ["spec.deletionPolicy", "needs managementPolicy Manage"],
    ),
    (
        "ni-after-running-format",
        PAI_NI,
        _set("spec.shutdown.afterRunning", "8 hours"),
        ["spec.shutdown.afterRunning"],
    ),
    (
        "ni-after-running-short",
        PAI_NI,
        _set("spec.shutdown.afterRunning", "10s"),
        ["spec.shutdown.afterRunning"],
    ),
    ("ni-cron-range", PAI_NI, _set("spec.shutdown.schedule", "0 25 * * *"), ["spec.shutdown.schedule"]),
    ("ni-cron-words", PAI_NI, _set("spec.shutdown.schedule", "every day"), ["spec.shutdown.schedule"]),
    ("ni-cron-fields", PAI_NI, _set("spec.shutdown.schedule", "0 20 * *"), ["spec.shutdown.schedule"]),
    ("ni-cron-zero-step", PAI_NI, _set("spec.shutdown.schedule", "*/0 * * * *"), ["spec.shutdown.schedule"]),
    (
        "ni-timezone",
        PAI_NI,
        _set("spec.shutdown.timeZone", "Mars/Olympus"),
        ["spec.shutdown.timeZone", "IANA"],
    ),
    (
        "ni-timezone-without-schedule",
        PAI_NI,
        _del("spec.shutdown.schedule"),
        ["spec.shutdown.timeZone", "schedule only"],
    ),
    ("ni-shutdown-empty", PAI_NI, _set("spec.shutdown", {}), ["spec.shutdown", "at least one of"]),
    ("ni-shutdown-at", PAI_NI, _set("spec.shutdown.at", "tomorrow"), ["spec.shutdown.at"]),
    ("ni-template-name", PAI_NI, _set("spec.template.name", "-bad"), ["spec.template.name"]),
    ("ni-template-image", PAI_NI, _del("spec.template.image"), ["spec.template", "exactly one of template.image"]),
    (
        "ni-gpu-negative",
        PAI_NI,
        _set("spec.template.resources", {"gpu": -1}),
        ["spec.template.resources.gpu"],
    ),
    (
        "ni-dataset-source",
        PAI_NI,
        _del("spec.template.datasets.0.id"),
        ["spec.template.datasets[0]", "id or uri"],
    ),
    (
        "ni-dataset-relative-path",
        PAI_NI,
        _set("spec.template.datasets.0.mountPath", "data"),
        ["spec.template.datasets[0].mountPath"],
    ),
    ("ni-instance-id", ADOPT_NI, _set("spec.instanceId", "has space"), ["spec.instanceId"]),
    ("icp-cpu-zero", MA_ICP, _set("spec.cpuPercent", 0), ["spec.cpuPercent"]),
    ("icp-gpu-over", PAI_ICP, _set("spec.gpuPercent", 101), ["spec.gpuPercent"]),
    ("icp-action", MA_ICP, _set("spec.action", "Delete"), ["spec.action", "Unsupported value"]),
    ("icp-enforcement", MA_ICP, _set("spec.enforcement", "Cloud"), ["spec.enforcement"]),
    (
        "icp-nothing-to-check",
        MA_ICP,
        _all(_del("spec.cpuPercent"), _del("spec.maxRunningHours")),
        ["spec", "at least one of cpuPercent"],
    ),
    ("icp-idle-minutes", PAI_ICP, _del("spec.idleMinutes"), ["spec.idleMinutes", "required"]),
    (
        "icp-window-too-long",
        MA_ICP,
        _set("spec.windowMinutes", 60),
        ["spec.windowMinutes", "must not exceed"],
    ),
    (
        "icp-window-timezone",
        MA_ICP,
        _set("spec.activeWindows.0.timeZone", "Europe/Atlantis"),
        ["spec.activeWindows[0].timeZone", "IANA"],
    ),
    (
        "icp-window-cron",
        MA_ICP,
        _set("spec.activeWindows.0.schedule", "61 * * * *"),
        ["spec.activeWindows[0].schedule"],
    ),
    (
        "icp-window-duration",
        MA_ICP,
        _set("spec.activeWindows.0.duration", "forever"),
        ["spec.activeWindows[0].duration"],
    ),
    ("icp-selector-missing", MA_ICP, _del("spec.selector"), ["spec.selector", "Required"]),
    (
        "icp-selector-operator",
        MA_ICP,
        _set("spec.selector.matchExpressions.0.operator", "Like"),
        ["spec.selector.matchExpressions[0].operator"],
    ),
    ("icp-max-running-zero", MA_ICP, _set("spec.maxRunningHours", 0), ["spec.maxRunningHours"]),
    ("icp-dry-run-type", MA_ICP, _set("spec.dryRun", "yes"), ["spec.dryRun"]),
    ("icp-warn-zero", MA_ICP, _set("spec.warnMinutes", 0), ["spec.warnMinutes"]),
    ("icp-snooze-over", MA_ICP, _set("spec.maxSnoozeHours", 200), ["spec.maxSnoozeHours"]),
    (
        "icp-notify-format",
        MA_ICP,
        _set("spec.notify", {"webhookSecretRef": {"name": "h", "key": "url"}, "format": "teams"}),
        ["spec.notify.format"],
    ),
    (
        "icp-notify-no-secret",
        MA_ICP,
        _set("spec.notify", {"format": "slack"}),
        ["spec.notify.webhookSecretRef", "Required"],
    ),
    ("ni-warn-over", PAI_NI, _set("spec.shutdown.warnMinutes", 2000), ["spec.shutdown.warnMinutes"]),
    (
        "pc-pricing-currency",
        PAI_PC,
        _set("spec.pricing", {"currency": "yuan", "perHour": {}}),
        ["spec.pricing.currency"],
    ),
    (
        "pc-pricing-negative",
        MA_PC,
        _set("spec.pricing", {"currency": "CNY", "perHour": {"x": -1}}),
        ["spec.pricing.perHour"],
    ),
    ("ni-tag-key-chars", PAI_NI, _set("spec.tags", {"team/name": "x"}), ["spec.tags", "tag keys have 1 to 128"]),
    ("ni-tag-key-reserved", PAI_NI, _set("spec.tags", {"cloudnotebooks.io:cluster": "x"}), ["spec.tags", "reserved"]),
    ("ni-tag-value-chars", PAI_NI, _set("spec.tags", {"team": "a,b"}), ["spec.tags.team"]),
    ("ni-tags-too-many", PAI_NI, _set("spec.tags", {f"k{i}": "v" for i in range(9)}), ["spec.tags", "8"]),
    ("pc-default-tag-reserved", PAI_PC, _set("spec.defaultTags", {"acs:x": "y"}), ["spec.defaultTags", "reserved"]),
    (
        "ni-template-image-and-snapshot",
        PAI_NI,
        _set("spec.template.imageFrom", {"snapshotRef": {"name": "env"}}),
        ["spec.template", "exactly one of template.image or template.imageFrom"],
    ),
    ("snap-both-images", PAI_SNAP, _set("spec.imageName", "x"), ["exactly one of imageUrl"]),
    ("snap-name-without-tag", MA_SNAP, _del("spec.imageTag"), ["spec.imageTag", "go together"]),
    ("snap-name-uppercase", MA_SNAP, _set("spec.imageName", "NLP"), ["spec.imageName"]),
    ("snap-deletion-policy", PAI_SNAP, _set("spec.deletionPolicy", "Orphan"), ["spec.deletionPolicy"]),
    ("icp-snapshot-timeout", PAI_ICP, _set("spec.snapshotTimeoutMinutes", 0), ["spec.snapshotTimeoutMinutes"]),
]


def test_invalid_table_is_large_enough() -> None:
    assert len(INVALID) >= 30
    assert len({case[0] for case in INVALID}) == len(INVALID)


@pytest.mark.parametrize(("base", "mutation", "expected"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_manifest_rejected(
    api: client.ApiClient, namespace: str, base: tuple[str, str], mutation: Mutation, expected: list[str]
) -> None:
    obj = copy.deepcopy(example(*base))
    create(api, obj, namespace)  # the unmutated manifest is valid: the mutation alone causes the rejection
    mutation(obj)
    obj["metadata"] = {"name": f"bad-{uuid.uuid4().hex[:8]}"}
    with pytest.raises(ApiException) as caught:
        create(api, obj, namespace)
    assert caught.value.status == 422, caught.value.body
    message = json.loads(caught.value.body)["message"]
    for text in expected:
        assert text in message, f"{text!r} not in {message!r}"


def test_a_token_file_is_not_a_field_of_a_provider_config(api: client.ApiClient, namespace: str) -> None:
    """A path in the operator's pod is the admin's configuration, never a namespace's."""
    obj = copy.deepcopy(example(*MA_PC))
    del obj["spec"]["credentialsSecretRef"]
    obj["spec"]["oidc"] = {"idpId": "idp", "audience": "c", "tokenFile": "/var/run/secrets/kubernetes.io/token"}
    with pytest.raises(ApiException) as caught:
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            GROUP, VERSION, namespace, "providerconfigs", obj, field_validation="Strict"
        )
    assert 'unknown field "spec.oidc.tokenFile"' in json.loads(caught.value.body)["message"]
    created = client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, "providerconfigs", obj, field_validation="Ignore"
    )
    assert "tokenFile" not in created["spec"]["oidc"]  # pruned, never stored


def test_provider_config_kind_is_immutable(api: client.ApiClient, namespace: str) -> None:
    obj = copy.deepcopy(example(*ADOPT_NI))
    created = create(api, obj, namespace)
    assert created["spec"]["providerConfigRef"]["kind"] == "ProviderConfig"  # the default
    created["spec"]["providerConfigRef"]["kind"] = "ClusterProviderConfig"
    with pytest.raises(ApiException) as caught:
        client.CustomObjectsApi(api).replace_namespaced_custom_object(
            GROUP, VERSION, namespace, "notebookinstances", obj["metadata"]["name"], created
        )
    assert "providerConfigRef is immutable" in json.loads(caught.value.body)["message"]


def test_cluster_provider_config_is_cluster_scoped_and_needs_a_secret_namespace(api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(api)
    name = f"cpc-{uuid.uuid4().hex[:6]}"
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ClusterProviderConfig", "metadata": {"name": name},
            "spec": {"provider": "pai-dsw", "region": "cn-hangzhou",
                     "credentialsSecretRef": {"name": "s"}}}  # fmt: skip
    with pytest.raises(ApiException) as caught:
        custom.create_cluster_custom_object(GROUP, VERSION, "clusterproviderconfigs", body)
    assert "spec.credentialsSecretRef.namespace" in json.loads(caught.value.body)["message"]
    body["spec"]["credentialsSecretRef"]["namespace"] = "notebook-system"
    body["spec"]["namespaceSelector"] = {"matchLabels": {"team": "ml"}}
    created = custom.create_cluster_custom_object(GROUP, VERSION, "clusterproviderconfigs", body)
    assert "namespace" not in created["metadata"] and created["spec"]["namespaceSelector"]["matchLabels"]
    custom.delete_cluster_custom_object(GROUP, VERSION, "clusterproviderconfigs", name)


def test_unknown_field_rejected_with_strict_validation(api: client.ApiClient, namespace: str) -> None:
    obj = copy.deepcopy(example(*PAI_NI))
    obj["spec"]["colour"] = "blue"
    with pytest.raises(ApiException) as caught:
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            GROUP, VERSION, namespace, "notebookinstances", obj, field_validation="Strict"
        )
    assert 'unknown field "spec.colour"' in json.loads(caught.value.body)["message"]


@pytest.mark.parametrize(
    ("base", "patch", "field"),
    [
        (ADOPT_NI, {"spec": {"instanceId": "another-id"}}, "spec.instanceId"),
        (PAI_NI, {"spec": {"providerConfigRef": {"name": "other"}}}, "spec.providerConfigRef"),
        (PAI_NI, {"spec": {"template": {"name": "renamed"}}}, "spec.template.name"),
        (PAI_PC, {"spec": {"provider": "modelarts", "projectId": "p1"}}, "spec.provider"),
    ],
    ids=["instance-id", "provider-config-ref", "template-name", "provider"],
)
def test_immutable_fields(
    api: client.ApiClient, namespace: str, base: tuple[str, str], patch: dict[str, Any], field: str
) -> None:
    obj = create(api, copy.deepcopy(example(*base)), namespace)
    with pytest.raises(ApiException) as caught:
        client.CustomObjectsApi(api).patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURALS[obj["kind"]], obj["metadata"]["name"], patch
        )
    assert caught.value.status == 422
    message = json.loads(caught.value.body)["message"]
    assert field in message and ("immutable" in message or "cannot be" in message), message


def test_defaults_applied(api: client.ApiClient, namespace: str) -> None:
    created = create(api, copy.deepcopy(example(*ADOPT_NI)), namespace)
    pc = create(api, copy.deepcopy(load_manifests(REPO / "examples/modelarts/providerconfig.yaml")[1]), namespace)
    assert pc["spec"]["pollIntervalSeconds"] == 30
    assert pc["spec"]["rateLimit"] == 10
    assert created["spec"]["managementPolicy"] == "Manage"
    icp = create(api, copy.deepcopy(example(*PAI_ICP)), namespace)
    assert icp["spec"]["dryRun"] is False


def test_status_only_through_subresource(api: client.ApiClient, namespace: str) -> None:
    custom = client.CustomObjectsApi(api)
    obj = copy.deepcopy(example(*ADOPT_NI))
    obj["status"] = {"phase": "Running"}
    created = create(api, obj, namespace)
    assert "status" not in created  # status in a create body is dropped
    name = created["metadata"]["name"]

    custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "notebookinstances", name, {"status": {"phase": "Running"}}
    )
    assert "status" not in get(api, "NotebookInstance", namespace, name)  # main resource ignores status

    generation = get(api, "NotebookInstance", namespace, name)["metadata"]["generation"]
    custom.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        namespace,
        "notebookinstances",
        name,
        {"status": {"phase": "Running", "instanceId": "x1"}},
    )
    stored = get(api, "NotebookInstance", namespace, name)
    assert stored["status"] == {"phase": "Running", "instanceId": "x1"}
    assert stored["metadata"]["generation"] == generation  # status writes do not bump the generation

    custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, "notebookinstances", name, {"spec": {"desiredState": "Running"}}
    )
    assert get(api, "NotebookInstance", namespace, name)["spec"]["desiredState"] == "Stopped"

    with pytest.raises(ApiException) as caught:
        custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, "notebookinstances", name, {"status": {"phase": "Exploded"}}
        )
    assert "status.phase" in json.loads(caught.value.body)["message"]
