"""The URL and address checks of providers/egress.py, as tables: every form a namespace's object could use to aim
the operator somewhere the admin did not allow."""

from __future__ import annotations

import pytest

from notebook_operator.providers.egress import (
    AllowList,
    NotAllowed,
    blocked,
    endpoint_allow_list,
    origin,
    pin_webhook,
    require_allowed,
)

EMULATOR = r"^http://127\.0\.0\.1:[0-9]+$"


@pytest.mark.parametrize(("url", "expected"), [
    ("https://pai-dsw.cn-hangzhou.aliyuncs.com", "https://pai-dsw.cn-hangzhou.aliyuncs.com:443"),
    ("https://pai-dsw.cn-hangzhou.aliyuncs.com/", "https://pai-dsw.cn-hangzhou.aliyuncs.com:443"),
    ("http://127.0.0.1:8080/x?y=1", "http://127.0.0.1:8080"),
    ("http://LOCALHOST", "http://localhost:80"),
    ("https://[::1]:8443/p", "https://[::1]:8443"),
    ("https://[fe80::1]", "https://[fe80::1]:443"),
])  # fmt: skip
def test_origin_always_writes_the_port(url: str, expected: str) -> None:
    assert origin(url) == expected


@pytest.mark.parametrize("url", [
    "http://allowed@other/",
    "https://user:pass@pai-dsw.cn-hangzhou.aliyuncs.com",
    "https://pai-dsw.cn-hangzhou.aliyuncs.com@127.0.0.1",
    "ftp://pai-dsw.cn-hangzhou.aliyuncs.com",
    "file:///var/run/secrets/kubernetes.io/serviceaccount/token",
    "https://",
    "https://host:99999",
    "pai-dsw.cn-hangzhou.aliyuncs.com",
])  # fmt: skip
def test_urls_that_are_refused_whatever_the_allow_list(url: str) -> None:
    with pytest.raises(NotAllowed):
        require_allowed(url, AllowList.of([".*"]), "spec.endpoint")


@pytest.mark.parametrize(("url", "allowed"), [
    ("https://pai-dsw.cn-hangzhou.aliyuncs.com", True),
    ("https://sts.cn-hangzhou.aliyuncs.com/", True),
    ("https://sts.aliyuncs.com", True),
    ("https://modelarts.cn-north-4.myhuaweicloud.com", True),
    ("https://modelarts.ap-southeast-1.myhuaweicloud.cn", True),
    ("https://iam.myhuaweicloud.com/v3", True),
    ("http://pai-dsw.cn-hangzhou.aliyuncs.com", False),  # plain http
    ("https://pai-dsw.cn-hangzhou.aliyuncs.com:8443", False),  # another port
    ("https://aliyuncs.com.attacker.example", False),
    ("https://pai-dsw.cn-hangzhou.aliyuncs.com.attacker.example", False),
    ("https://evilaliyuncs.com", False),
    ("https://127.0.0.1", False),
    ("http://127.0.0.1:8080", False),
    ("https://100.100.100.200", False),
    ("https://169.254.169.254", False),
    ("https://kubernetes.default.svc", False),
])  # fmt: skip
def test_the_default_endpoint_allow_list_is_https_on_the_clouds_domains(url: str, allowed: bool) -> None:
    assert endpoint_allow_list(()).allows(url) is allowed


@pytest.mark.parametrize(("url", "allowed"), [
    ("http://127.0.0.1:8080", True),
    ("http://127.0.0.1:8080/sts", True),
    ("http://127.0.0.1", True),  # the port is always written: :80
    ("https://127.0.0.1:8080", False),
    ("http://127.0.0.10:8080", False),
    ("http://127.0.0.1.nip.io:8080", False),
    ("http://localhost:8080", False),
    ("https://pai-dsw.cn-hangzhou.aliyuncs.com", False),  # the flag replaces the default
])  # fmt: skip
def test_an_admin_allow_list_matches_scheme_host_and_port(url: str, allowed: bool) -> None:
    assert endpoint_allow_list([EMULATOR]).allows(url) is allowed


@pytest.mark.parametrize(("url", "allowed"), [
    ("https://sts.aliyuncs.com", True),
    ("https://sts.aliyuncs.com.evil.example", False),  # a lookalike an unanchored search would admit
    ("https://evil-aliyuncs.com", False),
    ("http://sts.aliyuncs.com:443", False),
])  # fmt: skip
def test_an_unanchored_admin_pattern_must_match_the_whole_origin(url: str, allowed: bool) -> None:
    assert endpoint_allow_list([r"https://sts\.aliyuncs\.com:443"]).allows(url) is allowed


@pytest.mark.parametrize(("address", "refused"), [
    ("127.0.0.1", True),
    ("127.1.2.3", True),
    ("0.0.0.0", True),  # noqa: S104 (an address to refuse, not one to bind)
    ("10.0.0.1", True),
    ("172.16.5.4", True),
    ("192.168.1.1", True),
    ("100.64.0.1", True),
    ("100.100.100.200", True),  # Alibaba Cloud's metadata service
    ("169.254.169.254", True),  # most clouds' metadata service
    ("224.0.0.1", True),
    ("255.255.255.255", True),
    ("::1", True),
    ("::", True),
    ("fe80::1", True),
    ("fe80::1%eth0", True),
    ("fd00:ec2::254", True),  # ULA (AWS's IPv6 metadata address)
    ("fc00::1", True),
    ("ff02::1", True),
    ("::ffff:127.0.0.1", True),  # IPv4-mapped
    ("::ffff:169.254.169.254", True),
    ("::ffff:100.100.100.200", True),
    ("::ffff:7f00:1", True),
    ("64:ff9b::a9fe:a9fe", True),  # NAT64 of 169.254.169.254
    ("64:ff9b:1::808:808", True),  # local-use NAT64 (RFC 8215), whatever it embeds
    ("::ffff:0:a9fe:a9fe", True),  # SIIT IPv4-translated (RFC 2765)
    ("::ffff:0:808:808", True),
    ("2002:a9fe:a9fe::1", True),  # 6to4 of 169.254.169.254
    ("::127.0.0.1", True),  # IPv4-compatible (deprecated)
    ("8.8.8.8", False),
    ("47.96.1.1", False),
    ("2001:4860:4860::8888", False),
    ("::ffff:8.8.8.8", False),
])  # fmt: skip
def test_webhook_addresses(address: str, refused: bool) -> None:
    assert (blocked(address) is not None) is refused


def _lookup(answers: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    async def lookup(host: str, port: int) -> list[str]:
        return answers[host]

    return lookup


async def test_a_webhook_is_pinned_to_the_address_it_was_checked_at() -> None:
    pinned = await pin_webhook("https://oapi.dingtalk.com/robot/send?access_token=x", AllowList(()),
                               _lookup({"oapi.dingtalk.com": ["47.96.1.1", "47.96.1.2"]}))  # fmt: skip
    assert pinned.url == "https://47.96.1.1:443/robot/send?access_token=x"
    assert (pinned.hostname, pinned.host_header, pinned.address) == ("oapi.dingtalk.com", "oapi.dingtalk.com",
                                                                      "47.96.1.1")  # fmt: skip
    six = await pin_webhook("https://hooks.example:8443/a", AllowList(()), _lookup({"hooks.example": ["2400:3200::1"]}))
    assert six.url == "https://[2400:3200::1]:8443/a" and six.host_header == "hooks.example:8443"


@pytest.mark.parametrize(("url", "answers", "why"), [
    ("http://hooks.example/x", {"hooks.example": ["47.96.1.1"]}, "https"),
    ("https://127.0.0.1/x", {}, "internal"),
    ("https://169.254.169.254/latest", {}, "internal"),
    ("https://100.100.100.200/latest/meta-data", {}, "internal"),
    ("https://[::ffff:127.0.0.1]/x", {}, "internal"),
    ("https://rebind.example/x", {"rebind.example": ["47.96.1.1", "10.0.0.1"]}, "internal"),  # one bad: refused
    ("https://user@hooks.example/x", {"hooks.example": ["47.96.1.1"]}, "userinfo"),
    ("https://nowhere.example/x", {"nowhere.example": []}, "resolve"),
])  # fmt: skip
async def test_webhooks_refused(url: str, answers: dict[str, list[str]], why: str) -> None:
    with pytest.raises(NotAllowed) as refused:
        await pin_webhook(url, AllowList(()), _lookup(answers))
    assert why in str(refused.value) and url not in str(refused.value)


async def test_a_name_that_resolves_to_loopback_is_refused_with_the_real_resolver() -> None:
    with pytest.raises(NotAllowed, match="internal"):
        await pin_webhook("https://localhost:8443/hook", AllowList(()))


async def test_the_admin_may_allow_a_webhook_anywhere() -> None:
    allowed = AllowList.of([r"^http://127\.0\.0\.1:9[0-9]{3}$"])
    pinned = await pin_webhook("http://127.0.0.1:9000/hook", allowed)
    assert pinned.url == "http://127.0.0.1:9000/hook"
    with pytest.raises(NotAllowed):
        await pin_webhook("http://127.0.0.1:8000/hook", allowed)
