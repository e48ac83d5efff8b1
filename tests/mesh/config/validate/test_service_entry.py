"""ServiceEntry: the webhook's rules as a trainee meets them, each at its field path (Istio's
verdict on every case of its own table: test_istio_service_entry.py)."""

from __future__ import annotations

import pytest

from tests.helpers import assert_finding, doc

HTTP_80 = "ports: [{number: 80, name: http, protocol: HTTP}]"


def entry(spec: str) -> str:
    return doc("ServiceEntry", "external", spec)


CASES = [
    # (id, spec, expected "Severity CODE path" prefix or None for clean, message fragment)
    (
        "istio-egress-sample",
        "hosts: [www.googleapis.com]\nports: [{number: 443, name: https, protocol: HTTPS}]\n"
        "resolution: DNS\nlocation: MESH_EXTERNAL",
        None,
        None,
    ),
    (
        "endpoint-in-the-lab",
        f"hosts: [httpbin.example.com]\n{HTTP_80}\nresolution: STATIC\n"
        "endpoints: [{address: 127.0.0.1, ports: {http: 18000}}]",
        None,
        None,
    ),
    ("no-hosts", f"{HTTP_80}\nresolution: DNS", "Error IST0106 hosts", "at least one host"),
    ("host-star", f"hosts: ['*']\n{HTTP_80}", "Error IST0106 hosts[0]", "invalid host *"),
    (
        "port-name-twice",
        "hosts: [a.example.com]\nresolution: DNS\n"
        "ports: [{number: 80, name: http, protocol: HTTP}, {number: 81, name: http, protocol: HTTP}]",
        "Error IST0106 ports[1].name",
        "'http' already defined",
    ),
    (
        "tcp-port-without-addresses",
        "hosts: [db.example.com]\nports: [{number: 3306, name: tcp, protocol: TCP}]\nresolution: DNS",
        "Warning IST0133 ports[0]",
        "addresses are required",
    ),
    (
        "cidr-with-dns",
        f"hosts: [a.example.com]\naddresses: [10.0.0.0/24]\n{HTTP_80}\nresolution: DNS",
        "Error IST0106 addresses",
        "only for NONE/STATIC",
    ),
    (
        "endpoints-with-resolution-none",
        f"hosts: [a.example.com]\n{HTTP_80}\nresolution: NONE\nendpoints: [{{address: 1.2.3.4}}]",
        "Error IST0106 endpoints",
        "no endpoints should be provided",
    ),
    (
        "static-endpoint-by-name",
        f"hosts: [a.example.com]\n{HTTP_80}\nresolution: STATIC\nendpoints: [{{address: httpbin}}]",
        "Error IST0106 endpoints[0].address",
        "not a valid IP address",
    ),
    (
        "endpoint-port-not-declared",
        f"hosts: [a.example.com]\n{HTTP_80}\nresolution: STATIC\n"
        "endpoints: [{address: 127.0.0.1, ports: {web: 8000}}]",
        "Error IST0106 endpoints[0].ports",
        "port 8000 is not defined",
    ),
    (
        "unix-socket-relative",
        f"hosts: [a.example.com]\n{HTTP_80}\nresolution: STATIC\n"
        "endpoints: [{address: 'unix://relative/sock'}]",
        "Error IST0106 endpoints[0].address",
        "not an absolute path",
    ),
    (
        "dynamic-dns-needs-wildcards",
        f"hosts: [a.example.com]\n{HTTP_80}\nresolution: DYNAMIC_DNS",
        "Error IST0106 hosts[0]",
        "must be wildcarded",
    ),
    (
        "several-hosts-on-a-tcp-port",
        "hosts: [a.example.com, b.example.com]\naddresses: [10.0.0.1]\nresolution: STATIC\n"
        "ports: [{number: 5432, name: pg, protocol: TCP}]\nendpoints: [{address: 10.0.0.2}]",
        "Error IST0106 ports[0]",
        "multiple hosts provided with non-HTTP, non-TLS ports",
    ),
    (
        "selector-and-endpoints",
        f"hosts: [a.example.com]\n{HTTP_80}\nresolution: STATIC\n"
        "workloadSelector: {labels: {app: x}}\nendpoints: [{address: 10.0.0.2}]",
        "Error IST0106 ",
        "only one of WorkloadSelector or Endpoints",
    ),
]


@pytest.mark.parametrize(
    ("spec", "expected", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_finding(spec: str, expected: str | None, fragment: str | None) -> None:
    assert_finding(entry(spec), expected, fragment)
