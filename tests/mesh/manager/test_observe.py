from mesh.manager.observe import ManagerView, age, proxy_row, table
from mesh.meshdir import ProxyStatus, RegistryRecord

NOW = 1000.0


def rec(**kw):
    data = {
        "pod": "reviews-v1",
        "service": "reviews",
        "address": "127.0.0.1",
        "port": 9080,
        "ready": True,
        "heartbeat": NOW - 1,
        "ttl": 10,
    }
    data.update(kw)
    return RegistryRecord.from_json(data)


def status(**kw):
    data = {"pod": "reviews-v1", "version": 5, "hash": "h5", "heartbeat": NOW - 1, "error": None}
    data.update(kw)
    return ProxyStatus.from_json(data)


def test_synced_when_the_published_version_is_applied():
    row = proxy_row("reviews-v1", rec(), status(), (5, "h5"), NOW)
    assert (row.status, row.ready, row.ok) == ("SYNCED", True, True)


def test_stale_when_behind_silent_or_expired():
    assert (
        proxy_row("reviews-v1", rec(), status(version=4, hash="h4"), (5, "h5"), NOW).status
        == "STALE"
    )
    assert (
        proxy_row("reviews-v1", rec(), status(heartbeat=NOW - 60), (5, "h5"), NOW).status == "STALE"
    )
    expired = proxy_row("reviews-v1", rec(heartbeat=NOW - 11), status(), (5, "h5"), NOW)
    assert expired.status == "STALE" and not expired.ready
    assert proxy_row("reviews-v1", rec(), None, (5, "h5"), NOW).detail == "no status reported yet"
    assert proxy_row("reviews-v1", None, status(), (5, "h5"), NOW).in_registry is False


def test_error_only_for_the_current_version():
    row = proxy_row(
        "reviews-v1",
        rec(),
        status(version=4, hash="h4", error="bad", error_version=5),
        (5, "h5"),
        NOW,
    )
    assert row.status == "ERROR" and row.detail == "bad"
    old = proxy_row("reviews-v1", rec(), status(error="bad", error_version=3), (5, "h5"), NOW)
    assert old.status == "SYNCED"


def test_unready_synced_is_not_ok():
    row = proxy_row("reviews-v1", rec(ready=False), status(), (5, "h5"), NOW)
    assert row.status == "SYNCED" and not row.ok


def test_manager_view_from_garbage_and_from_status():
    assert ManagerView.from_status({"heartbeat": "x", "rejected": 3}, NOW).alive is False
    view = ManagerView.from_status(
        {
            "heartbeat": NOW - 1,
            "version": 7,
            "rejected": {"at": NOW - 5, "issues": [{"code": "IST0101"}]},
        },
        NOW,
    )
    assert (
        view.alive and view.version == 7 and view.rejected_at == NOW - 5 and len(view.rejected) == 1
    )


def test_table_and_age():
    assert table(["A", "BB"], [["x", None]]).splitlines() == ["A   BB", "x   -"]
    assert [age(s) for s in (None, 5, 90, 7300, 200000)] == ["-", "5s", "1m", "2h", "2d"]
