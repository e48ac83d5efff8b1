"""The local lab's port choice (the processes themselves: tests/integration/test_lab_*)."""

from __future__ import annotations

import socket

from mesh.lab.local import LAB_PORT_RANGE, free_ports, port_free


def ephemeral_range() -> tuple[int, int]:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low, high = f.read().split()
    return int(low), int(high)


def test_free_ports_are_distinct_bindable_and_never_a_possible_source_port() -> None:
    ports = free_ports(50)
    assert len(set(ports)) == 50
    low, high = ephemeral_range()
    for port in ports:
        assert LAB_PORT_RANGE[0] <= port < LAB_PORT_RANGE[1]
        assert not low <= port <= high, f"{port} is in the ephemeral range {low}-{high}"
        assert port_free(port)


def test_a_port_someone_listens_on_is_never_chosen() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", free_ports(1)[0]))
        listener.listen()
        taken = listener.getsockname()[1]
        assert not port_free(taken)
        for _ in range(20):
            assert taken not in free_ports(200)
