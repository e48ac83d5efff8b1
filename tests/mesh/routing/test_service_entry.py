"""ServiceEntry hosts route like Services: to the entry's endpoints (a lab container or
process), or to none (Envoy's 503 no healthy upstream), and a VirtualService may name them."""

from __future__ import annotations

from mesh.routing import Forward
from tests.helpers import route, table

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
