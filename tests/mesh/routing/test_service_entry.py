"""ServiceEntry hosts route like Services: to the entry's endpoints (a lab container or
process), or to none (Envoy's 503 no healthy upstream), and a VirtualService may name them."""

from __future__ import annotations

import random

from mesh.config.loader import normal_documents
from mesh.routing import Forward, ProxyIdentity, RequestView, compile_snapshot, decide
from mesh.snapshot import Snapshot
from tests.helpers import load, route, table

EGRESS = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httpbin-ext}
spec:
  hosts: [httpbin.example.com]
  location: MESH_EXTERNAL
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1, ports: {http: 18000}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: googleapis}
spec:
  hosts: [www.googleapis.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin-ext}
spec:
  hosts: [httpbin.example.com]
  http:
  - timeout: 3s
    route: [{destination: {host: httpbin.example.com}}]
"""


def test_an_external_host_with_endpoints_goes_to_them() -> None:
    decision = route(table(EGRESS, endpoints=[]), "httpbin.example.com", path="/get")
    assert isinstance(decision, Forward)
    assert [e.key for e in decision.cluster.endpoints] == ["127.0.0.1:18000"]
    assert decision.timeout == 3.0  # the VirtualService on the entry's host applies


def test_an_external_host_without_endpoints_has_a_cluster_with_none() -> None:
    decision = route(table(EGRESS, endpoints=[]), "www.googleapis.com")
    assert isinstance(decision, Forward)  # not 404 NR: the host is known
    assert decision.cluster.defined and decision.cluster.endpoints == ()  # 503 UH upstream


def test_an_entry_published_in_normal_form_reaches_the_sidecars_table() -> None:
    """The manager publishes the ServiceEntry in normal form; a sidecar compiles it alone."""
    snapshot = Snapshot(1, normal_documents(r.raw for r in load(EGRESS).resources), ())
    table = compile_snapshot(snapshot, ProxyIdentity("p", {"app": "productpage"}))
    decision = decide(table, RequestView(host="httpbin.example.com"), random.Random(1))
    assert isinstance(decision, Forward) and decision.timeout == 3.0
    assert [e.key for e in decision.cluster.endpoints] == ["127.0.0.1:18000"]
