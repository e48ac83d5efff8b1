import json

import pytest

from mesh.manager.registry import (
    RecordError,
    RegistryRecord,
    analysis_endpoints,
    is_fresh,
    next_expiry,
    parse_records,
    snapshot_endpoints,
)


def record(pod="reviews-v1", **kw):
    data = {
        "pod": pod,
        "service": pod.split("-")[0],
        "labels": {"app": pod.split("-")[0], "version": pod.split("-")[1]},
        "address": "127.0.0.1",
        "port": 9080,
        "ready": True,
        "heartbeat": 100.0,
        "ttl": 10,
        "role": "sidecar",
    }
    data.update(kw)
    return data


def test_fresh_until_ttl():
    rec = RegistryRecord.from_json(record())
    assert is_fresh(rec, 109.9)
    assert not is_fresh(rec, 110.0)


def test_snapshot_endpoints_keep_only_fresh_ready_sidecars():
    recs = [
        RegistryRecord.from_json(record("reviews-v1")),
        RegistryRecord.from_json(record("reviews-v2", ready=False)),
        RegistryRecord.from_json(record("reviews-v3", heartbeat=50.0)),
        RegistryRecord.from_json(record("istio-ingressgateway", role="gateway")),
    ]
    assert [e.pod for e in snapshot_endpoints(recs, 105.0)] == ["reviews-v1"]
    # Validation still knows the unready pod (IST0173 is about labels, not readiness).
    assert [e.pod for e in analysis_endpoints(recs, 105.0)] == ["reviews-v1", "reviews-v2"]


def test_next_expiry_is_the_earliest_fresh_record():
    recs = [
        RegistryRecord.from_json(record("a-v1", heartbeat=100.0, ttl=5)),
        RegistryRecord.from_json(record("b-v1", heartbeat=101.0, ttl=10)),
        RegistryRecord.from_json(record("c-v1", heartbeat=1.0, ttl=1)),
    ]
    assert next_expiry(recs, 102.0) == 105.0
    assert next_expiry(recs, 200.0) is None


@pytest.mark.parametrize(
    "data",
    [
        [],
        "x",
        {"pod": "a"},
        record(port=0),
        record(port="http"),
        record(ttl=-1),
        record(heartbeat="nan"),
        record(labels=["a"]),
        record(role="router"),
    ],
    ids=lambda d: repr(d)[:30],
)
def test_bad_records_raise_record_error(data):
    with pytest.raises(RecordError):
        RegistryRecord.from_json(data)


def test_ready_must_be_true_not_truthy():
    assert not RegistryRecord.from_json(record(ready="false")).ready


def test_parse_records_reports_bad_files_and_keeps_newest_duplicate():
    raw = [
        ("a.json", json.dumps(record("reviews-v1", heartbeat=100.0)).encode()),
        ("b.json", json.dumps(record("reviews-v1", heartbeat=105.0, port=9999)).encode()),
        ("bad.json", b"{not json"),
        ("worse.json", b"\xff\xfe"),
    ]
    recs, problems = parse_records(raw)
    assert [(r.pod, r.port) for r in recs] == [("reviews-v1", 9999)]
    assert len(problems) == 2 and problems[0].startswith("bad.json")


def test_a_gateway_may_register_without_a_port_and_is_never_an_endpoint():
    rec = RegistryRecord.from_json(record("istio-ingressgateway", role="gateway", port=None))
    assert rec.port == 0
    assert snapshot_endpoints([rec], 105.0) == ()
    with pytest.raises(RecordError):
        RegistryRecord.from_json(record(port=None))
