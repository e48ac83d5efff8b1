from mesh.config.issues import Issue
from mesh.manager.compile import (
    blocking,
    next_snapshot,
    next_version,
    resource_key,
    sort_resources,
)
from mesh.snapshot import Endpoint


def vs(name, subset="v1", namespace=None):
    meta = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": meta,
        "spec": {
            "hosts": [name],
            "http": [{"route": [{"destination": {"host": name, "subset": subset}}]}],
        },
    }


EP = Endpoint("reviews-v1", "reviews", "127.0.0.1", 9080, {"app": "reviews", "version": "v1"})


def test_warnings_do_not_block_but_errors_do():
    issues = [
        Issue("Warning", "IST0173", "subset selects no pods"),
        Issue("Warning", "IST0133", "weights"),
    ]
    assert blocking(issues) == []
    bad = Issue("Error", "IST0101", "subset v9 not defined")
    assert blocking([*issues, bad]) == [bad]


def test_resource_order_is_deterministic():
    a, b = vs("reviews"), vs("details")
    assert sort_resources([a, b]) == sort_resources([b, a])
    assert resource_key(vs("x")) == ("VirtualService", "default", "x")
    assert resource_key(vs("x", namespace="lab")) == ("VirtualService", "lab", "x")


def test_first_snapshot_then_nothing_when_unchanged():
    first = next_snapshot(None, [vs("reviews")], [EP], now=10.0)
    assert first is not None and first.version == 1 and first.hash.startswith("sha256:")
    assert next_snapshot(first, [vs("reviews")], [EP], now=11.0) is None


def test_version_strictly_increases_and_continues_from_the_floor():
    first = next_snapshot(None, [vs("reviews")], [EP], now=10.0, floor_version=41)
    assert first is not None and first.version == 42
    second = next_snapshot(first, [vs("reviews", "v2")], [EP], now=11.0, floor_version=41)
    assert second is not None and second.version == 43
    third = next_snapshot(second, [vs("reviews", "v2")], [], now=12.0)
    assert third is not None and third.version == 44  # endpoints alone change the content
    assert next_version(None, 3, 7) == 8 and next_version() == 1
