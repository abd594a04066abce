"""Free ports for the local cluster and the tests: never one handed out before, never one bound on any address."""

from __future__ import annotations

import socket

import pytest

from notebook_devtools import localcluster


def test_a_port_is_never_handed_out_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    # etcd's client and peer ports and the API server's are chosen before any is bound: they must differ.
    monkeypatch.setenv(localcluster.PORT_RANGE_ENV, "31900-31919")
    monkeypatch.setattr(localcluster, "_handed_out", set())
    ports = [localcluster.free_port() for _ in range(20)]
    assert sorted(ports) == list(range(31900, 31920))
    with pytest.raises(localcluster.ClusterError, match="no free port in"):
        localcluster.free_port()


def test_a_port_bound_on_any_address_is_not_free(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(localcluster.PORT_RANGE_ENV, "31950-31951")
    monkeypatch.setattr(localcluster, "_handed_out", set())
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        # Not loopback: the machine's own address (the node test's emulator listens there), or all of them.
        address = localcluster.host_ip() if _has_host_ip() else "0.0.0.0"  # noqa: S104
        listener.bind((address, 31950))
        listener.listen()
        assert localcluster.free_port() == 31951


def _has_host_ip() -> bool:
    try:
        return localcluster.host_ip() not in ("", "127.0.0.1")
    except OSError:  # no route: all addresses instead
        return False
