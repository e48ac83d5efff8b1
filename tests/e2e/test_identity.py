"""Workload identity on the compose lab (profile security): the manager is the CA with its
root in a volume only it mounts, every proxy container (sidecars and the gateway) has its key
and certificate in its own tmpfs, the legacy pods none, and no private key is in the shared
mesh volume or in the image's layers."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import GATEWAY_PORT, PROJECT, ComposeLab, _require_docker, lab_env
from tests.keyscan import scan_image

pytestmark = pytest.mark.e2e
# Beside the session lab's ports (+0 .. +1, Prometheus +10, console +11) and profile istio's
# (+2 .. +6): +12 .. +16.
SECURITY_PORT = GATEWAY_PORT + 12
SECRETS = "/var/run/meshlab/secrets"
IMAGE = os.environ.get("MESHLAB_IMAGE", "meshlab:latest")


@pytest.fixture(scope="module")
def security(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeLab]:
    _require_docker()
    config_dir = tmp_path_factory.mktemp("lab-config-security")
    ports = tuple(SECURITY_PORT + i for i in range(5))
    env = lab_env(ports, config_dir, f"{PROJECT}-sec")  # type: ignore[arg-type]
    lab = ComposeLab(env, config_dir)
    lab.make("up", "PROFILE=security", timeout=2400)
    try:
        yield lab
    finally:
        lab.make("down", "PROFILE=security", timeout=300)


def _meta(lab: ComposeLab, service: str) -> dict[str, str] | None:
    done = lab.compose("exec", "-T", service, "cat", f"{SECRETS}/current/meta.json", check=False)
    return json.loads(done.stdout) if done.returncode == 0 else None


def test_every_proxy_has_its_identity_in_its_own_tmpfs(security: ComposeLab) -> None:
    expected = {
        "istio-ingressgateway": "istio-system/sa/istio-ingressgateway-service-account",
        "httpbin-foo": "foo/sa/httpbin", "sleep-foo": "foo/sa/sleep",
        "httpbin-bar": "bar/sa/httpbin", "sleep-bar": "bar/sa/sleep",
    }  # fmt: skip
    for service, tail in expected.items():
        meta = _meta(security, service)
        assert meta is not None, service
        assert meta["identity"] == f"spiffe://cluster.local/ns/{tail}", service
        # (Debian's /var/run is /run: /proc/mounts names it so.)
        kind = security.compose("exec", "-T", service, "stat", "-f", "-c", "%T", SECRETS).stdout
        assert kind.strip() == "tmpfs", service
    for service in ("httpbin-legacy", "sleep-legacy"):
        assert _meta(security, service) is None, service
    status = security.meshctl("status").stdout
    assert "mesh CA: root serial" in status and "refused" not in status


def test_no_private_key_outside_its_pod_or_the_ca(security: ComposeLab) -> None:
    # The shared volume (as every pod mounts it) and the config dir hold public material only.
    found = security.compose(
        "exec", "-T", "sleep-foo", "sh", "-c", "grep -rl 'PRIVATE KEY' /mesh || true"
    ).stdout.split()
    assert found == []
    # The CA's key is in the manager's own volume, which no pod mounts.
    ca = security.compose("exec", "-T", "manager", "ls", "/var/lib/meshlab/ca").stdout.split()
    assert "ca-key.pem" in ca
    pod_ls = security.compose("exec", "-T", "sleep-foo", "ls", "/var/lib/meshlab").stdout.split()
    assert pod_ls == []
    # The image as built: no key in its layers.
    assert scan_image(IMAGE) == []


def test_describe_reachability_and_the_permissive_stage_on_compose(security: ComposeLab) -> None:
    described = security.meshctl("describe", "pod", "httpbin", "-n", "foo").stdout
    assert "Identity: spiffe://cluster.local/ns/foo/sa/httpbin" in described
    assert "Certificate: serial " in described
    # make verify-mtls on the compose lab: meshctl reachability in the manager, curl in each
    # sleep container through lab.sh exec (the stages that need the data plane's mTLS are
    # verified once it is there).
    done = security.make("verify-mtls", "STAGES=mtls-permissive", timeout=600)
    assert "sleep.legacy to httpbin.foo: 200   PASS" in done.stdout
    assert "verify-mtls: PASS" in done.stdout
