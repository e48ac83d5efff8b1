"""The topology as plain data: Services, pods, which pods a Service has, live pods."""

from __future__ import annotations

from mesh.topology import Pod, Service, ServicePort, Topology
from tests.helpers import COURSE


def test_a_service_has_kubernetes_names_and_several_ports() -> None:
    service = Service(
        "httpbin", "foo", ports=(ServicePort(8000, "http", target_port=8080), ServicePort(9000))
    )
    assert service.key == "foo/httpbin"
    assert service.fqdn == "httpbin.foo.svc.cluster.local"
    assert service.pod_selector == {"app": "httpbin"}
    assert service.port("http") is service.ports[0]
    assert service.port(9000) is service.ports[1]
    assert service.port(1234) is None


def test_a_pod_serves_its_app_label_unless_it_names_a_service() -> None:
    pod = Pod("reviews-v2-1", {"app": "reviews", "version": "v2"}, workload="reviews-v2")
    assert (pod.service, pod.version, pod.workload_name, pod.runs) == (
        "reviews",
        "v2",
        "reviews-v2",
        "reviews",
    )
    named = Pod("x", {"app": "a"}, service_name="b", program="httpbin")
    assert (named.service, named.runs) == ("b", "httpbin")


def test_pods_of_a_service_are_its_namespace_s_app_pods_only() -> None:
    topology = Topology(
        services=(Service("web"), Service("web", "foo")),
        pods=(
            Pod("web-1", {"app": "web"}),
            Pod("web-foo", {"app": "web"}, namespace="foo"),
            Pod("gw", {"app": "web"}, proxy="gateway"),
            Pod("legacy", {"app": "web"}, proxy="none"),
        ),
    )
    assert [p.name for p in topology.pods_of("web")] == ["web-1", "legacy"]
    assert [p.name for p in topology.pods_of("web", "foo")] == ["web-foo"]
    assert [p.name for p in topology.gateway_pods] == ["gw"]
    assert topology.service("web", "foo") is topology.services[1]
    assert topology.service("web", "bar") is None


def test_live_pods_replace_the_app_pods_and_bring_their_services() -> None:
    live = COURSE.with_app_pods(
        [Pod("reviews-x", {"app": "reviews"}), Pod("new-1", {"app": "new"})]
    )
    assert [p.name for p in live.app_pods] == ["reviews-x", "new-1"]
    assert [p.labels for p in live.gateway_pods] == [
        {"app": "istio-ingressgateway", "istio": "ingressgateway"}
    ]
    assert live.service_names == COURSE.service_names | {"new"}
    assert COURSE.with_app_pods([]).app_pods == ()
