"""One issue: the key made here, the CSR out, the CA's answer checked before it is used —
expired, another CA's, another identity's or another key's certificate is refused."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mesh.agent import secrets
from mesh.agent.issue import IssueError, issue
from mesh.meshdir import ManagerStatus, MeshDir, atomic_write, write_json
from mesh.security.ca import MeshCA
from mesh.security.certs import load_private_key, parse_certificates
from mesh.security.identity import Identity

SLEEP = Identity("foo", "sleep")
HTTPBIN = Identity("foo", "httpbin")


@pytest.fixture(scope="module")
def ca() -> MeshCA:
    return MeshCA.create(datetime.now(UTC))


def _answer(
    mesh: MeshDir,
    ca: MeshCA,
    *,
    identity: Identity = SLEEP,
    ttl: timedelta = timedelta(hours=1),
    at: datetime | None = None,
    root: MeshCA | None = None,
) -> Callable[[float], None]:
    """A ``sleep`` that plays the CA once: signs the CSR on disk and writes the answer."""
    done: list[bool] = []

    def sleep(_seconds: float) -> None:
        if done:
            raise AssertionError("the agent kept waiting after the answer")
        done.append(True)
        csr = mesh.csr_file("sleep").read_bytes()
        chain = (
            _forge(ca, csr, identity)
            if identity != SLEEP
            else ca.sign(csr, identity, at or datetime.now(UTC), ttl).cert_chain_pem
        )
        atomic_write(mesh.root_cert_file, (root or ca).root_pem)
        atomic_write(mesh.cert_file("sleep"), chain)

    return sleep


def _forge(ca: MeshCA, csr_pem: bytes, identity: Identity) -> bytes:
    """A certificate for the CSR's key naming another identity (the lab's CA refuses to
    sign one: a compromised or buggy CA would)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    csr = x509.load_pem_x509_csr(csr_pem)
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(ca.signing_cert.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(identity.uri)]), True
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.signing_key.public_key()),
            False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .sign(ca.signing_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def test_a_certificate_for_the_pod_s_key_becomes_the_current_generation(
    tmp_path: Path, ca: MeshCA
) -> None:
    mesh = MeshDir(tmp_path / "mesh").create()
    directory = tmp_path / "pod" / "secrets"
    done = issue(mesh, "sleep", SLEEP, directory, sleep=_answer(mesh, ca))
    meta = secrets.read_meta(directory)
    assert meta == done.meta
    assert meta is not None and meta["identity"] == SLEEP.uri
    not_after = secrets.parse_time(meta["not_after"])
    renew_at = secrets.parse_time(meta["renew_at"])
    # Half of the hour's lifetime is left at renewal (± a second of test time).
    assert abs((not_after - renew_at).total_seconds() - 1800) < 5
    key = load_private_key((directory / "current" / "key.pem").read_bytes())
    leaf = parse_certificates((directory / "current" / "cert-chain.pem").read_bytes())[0]
    assert leaf.public_key() == key.public_key()
    assert f"{leaf.serial_number:x}" == meta["serial"]
    # The shared directory holds the CSR and the chain: public material only.
    for path in mesh.root.rglob("*"):
        if path.is_file():
            assert b"PRIVATE KEY" not in path.read_bytes(), path


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ({"identity": HTTPBIN}, "wrong_identity"),
        ({"at": datetime.now(UTC) - timedelta(hours=3)}, "expired"),
        ({"root": "other"}, "unknown_ca"),
    ],
)
def test_a_bad_answer_is_refused_and_nothing_written(
    tmp_path: Path, ca: MeshCA, answer: dict[str, object], why: str
) -> None:
    mesh = MeshDir(tmp_path / "mesh").create()
    directory = tmp_path / "secrets"
    if answer.get("root") == "other":
        answer = {"root": MeshCA.create(datetime.now(UTC))}
    with pytest.raises(IssueError, match=why):
        issue(mesh, "sleep", SLEEP, directory, sleep=_answer(mesh, ca, **answer))  # type: ignore[arg-type]
    assert secrets.read_meta(directory) is None
    assert secrets.generations(directory) == []


def test_the_ca_s_refusal_ends_the_wait_with_its_reason(tmp_path: Path) -> None:
    mesh = MeshDir(tmp_path / "mesh").create()

    def refuse(_seconds: float) -> None:
        at = secrets.format_time(datetime.now(UTC))
        reason = "CSR refused: it asks for x, but the requester may only have y"
        status = ManagerStatus(ca={"refused": {"sleep": {"reason": reason, "at": at}}})
        write_json(mesh.manager_status, status.to_json())

    with pytest.raises(IssueError, match="refused the CSR: CSR refused: it asks for x"):
        issue(mesh, "sleep", SLEEP, tmp_path / "s", sleep=refuse, timeout=5)


def test_an_old_refusal_and_an_old_certificate_do_not_end_the_wait(
    tmp_path: Path, ca: MeshCA
) -> None:
    mesh = MeshDir(tmp_path / "mesh").create()
    old = ca.sign(
        _csr_of_another_key(), SLEEP, datetime.now(UTC), timedelta(hours=1)
    ).cert_chain_pem
    atomic_write(mesh.cert_file("sleep"), old)
    status = ManagerStatus(
        ca={"refused": {"sleep": {"reason": "old", "at": "2020-01-01T00:00:00Z"}}}
    )
    write_json(mesh.manager_status, status.to_json())
    ticks = iter(range(1000))
    with pytest.raises(IssueError, match="within 1 s .*no certificate for this pod's new key"):
        issue(
            mesh, "sleep", SLEEP, tmp_path / "s", timeout=1,
            clock=lambda: 1_800_000_000 + next(ticks) * 0.1, sleep=lambda _s: None,
        )  # fmt: skip


def _csr_of_another_key() -> bytes:
    from mesh.security.certs import make_csr, new_private_key

    return make_csr(new_private_key(), SLEEP)


def test_main_prints_the_meta_or_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mesh.agent.issue import main

    code = main(
        ["--pod", "sleep", "--namespace", "foo", "--service-account", "Bad_Name",
         "--mesh-dir", str(tmp_path), "--secrets-dir", str(tmp_path / "s")]
    )  # fmt: skip
    assert code == 2
    assert "Kubernetes names" in capsys.readouterr().err
    json.dumps({})
