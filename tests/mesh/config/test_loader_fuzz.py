"""Property: the loader never crashes — any YAML-shaped input gives resources or clear issues."""

from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mesh.config.loader import load_resources, load_text
from mesh.config.validate import analyze
from tests.helpers import COURSE

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1000, 1000),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(["2.5s", "1m", "reviews", "v1", "*", "(", "exact"]),
)
keys = st.sampled_from(
    [
        "hosts",
        "http",
        "route",
        "destination",
        "host",
        "subset",
        "weight",
        "match",
        "headers",
        "exact",
        "prefix",
        "regex",
        "fault",
        "delay",
        "abort",
        "percentage",
        "value",
        "timeout",
        "subsets",
        "name",
        "labels",
        "trafficPolicy",
        "outlierDetection",
        "servers",
        "port",
        "gateways",
        "retries",
        "attempts",
        "uri",
        "redirect",
        "rewrite",
        "mirror",
        "wieght",
    ]
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=30,
)
documents = st.fixed_dictionaries(
    {
        "apiVersion": st.sampled_from(
            ["networking.istio.io/v1", "networking.istio.io/v1beta1", "v1", 3]
        ),
        "kind": st.sampled_from(
            ["VirtualService", "DestinationRule", "Gateway", "Deployment", "Nope"]
        ),
        "metadata": st.one_of(
            st.fixed_dictionaries({"name": st.sampled_from(["reviews", "x", "Bad"])}), scalars
        ),
        "spec": values,
    }
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(documents, max_size=3))
def test_structured_documents_never_crash(docs: list[dict]) -> None:
    text = yaml.safe_dump_all(docs)
    result = load_text(text, "fuzz.yaml")
    analyze(result.resources, COURSE)
    assert result.ok or any(i.is_error for i in result.issues)
    again = load_resources(docs)
    analyze(again.resources, COURSE)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_never_crashes(text: str) -> None:
    result = load_text(text, "fuzz.yaml")
    analyze(result.resources, COURSE)
