"""Workload identity in the local lab (profile security): every proxy — sidecars and the
ingress gateway — gets a certificate for its own SPIFFE identity from the manager's CA,
renewed at half-life; the pod without a sidecar gets none; no private key is ever written
outside the pod that owns it (the mesh directory, the lab directory's other parts)."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mesh.agent import secrets
from mesh.lab.local import LocalLab, free_ports
from mesh.meshdir import read_manager_status
from mesh.security.certs import identity_of, parse_certificates, verify_peer
from tests.keyscan import scan

pytestmark = pytest.mark.integration

TTL = 20.0  # MESH_CERT_TTL: a renewal every ~10 s (half-life)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalLab]:
    tmp = tmp_path_factory.mktemp("identity")
    mp = pytest.MonkeyPatch()
    mp.setenv("MESH_CERT_TTL", f"{TTL:g}s")
    lab = LocalLab(
        tmp / "mesh", profile="security", gateway_port=free_ports(1)[0], grace=8.0,
        out=io.StringIO(), observe=False,
    )  # fmt: skip
    try:
        lab.start(timeout=240)
        yield lab
    finally:
        lab.stop()
        mp.undo()


def _wait_meta(lab: LocalLab, pod: str, timeout: float = 60.0) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        meta = secrets.read_meta(lab.secrets_dir(pod))
        if meta is not None:
            return meta
        time.sleep(0.2)
    raise AssertionError(f"{pod}: no certificate in {timeout:g} s")


def test_every_proxy_has_its_own_identity_and_the_legacy_pod_none(lab: LocalLab) -> None:
    root = parse_certificates(lab.mesh.root_cert_file.read_bytes())
    proxies = [p for p in lab.topology.pods if p.proxy != "none"]
    assert lab.gateway in proxies
    for pod in proxies:
        meta = _wait_meta(lab, pod.name)
        assert (
            meta["identity"]
            == f"spiffe://cluster.local/ns/{pod.namespace}/sa/{pod.service_account}"
        )
        current = lab.secrets_dir(pod.name) / "current"
        chain = (current / "cert-chain.pem").read_bytes()
        leaf = parse_certificates(chain)[0]
        assert identity_of(leaf).uri == meta["identity"]
        verify_peer(parse_certificates(chain), root, datetime.now(UTC))
        assert oct(lab.secrets_dir(pod.name).stat().st_mode & 0o777) == "0o700"
    for pod in lab.topology.app_pods:
        if pod.proxy == "none":
            assert not lab.secrets_dir(pod.name).exists()
            assert not lab.mesh.csr_file(pod.name).exists()
    status = read_manager_status(lab.mesh)
    assert status is not None and status.ca is not None
    assert status.ca["refused"] == {}
    assert set(status.ca["issued"]) == {p.name for p in proxies}


def test_certificates_rotate_at_half_life(lab: LocalLab) -> None:
    pod = "sleep.foo" if lab.topology.pod("sleep.foo") else lab.gateway.name
    first = _wait_meta(lab, pod)
    deadline = time.monotonic() + 3 * TTL
    while time.monotonic() < deadline:
        meta = secrets.read_meta(lab.secrets_dir(pod))
        if meta is not None and meta["serial"] != first["serial"]:
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"{pod}: no rotation within {3 * TTL:g} s")
    renewed_at = time.time()
    renew_at = secrets.parse_time(first["renew_at"]).timestamp()
    # At renew_at (± the agent's sleep granularity and the CA's 0.25 s poll; generous: 4 s).
    assert renew_at - 1 <= renewed_at <= renew_at + 4 + 0.5
    # Only the current and the previous generation stay.
    assert len(secrets.generations(lab.secrets_dir(pod))) <= 2


def test_no_private_key_outside_its_pod(lab: LocalLab) -> None:
    assert scan(lab.mesh.root) == []
    allowed = [lab.secrets_dir(p.name) for p in lab.topology.pods] + [lab.ca_dir]
    assert scan(lab.lab_dir, allowed) == []
    # The keys are where they belong (the scan would find them).
    assert scan(lab.secrets_dir(lab.gateway.name))
    lab_file = json.loads((lab.mesh.root / "lab.json").read_text())
    assert lab_file["gateway"]["secrets_dir"] == str(lab.secrets_dir(lab.gateway.name))


def test_stopping_the_lab_removes_the_pods_keys(tmp_path: Path) -> None:
    lab = LocalLab(
        tmp_path / "mesh", profile="httpbin", gateway_port=free_ports(1)[0], grace=8.0,
        out=io.StringIO(), observe=False,
    )  # fmt: skip
    try:
        lab.start(timeout=240)
        _wait_meta(lab, lab.gateway.name)
    finally:
        lab.stop()
    assert not (lab.lab_dir / "pods").exists()
    assert scan(lab.lab_dir, [lab.ca_dir]) == []
