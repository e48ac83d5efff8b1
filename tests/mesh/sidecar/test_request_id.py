"""x-request-id made by the proxy."""

from __future__ import annotations

from mesh.sidecar.request_id import new_request_id


def test_request_ids_are_uuid4():
    import uuid

    rid = new_request_id()
    assert uuid.UUID(rid).version == 4 and rid != new_request_id()
