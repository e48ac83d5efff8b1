"""The analyze / apply / status output contract (README, "What meshctl prints"): findings
about what you gave, one note about the live config, severity words that match exit codes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from mesh.cli.meshctl import main
from mesh.meshdir import MeshDir, write_json

BOOKINFO = Path(__file__).parent / "istio_bookinfo_networking"
DR_ALL = str(BOOKINFO / "destination-rule-all.yaml")
VS_ALL_V1 = str(BOOKINFO / "virtual-service-all-v1.yaml")
DANGLING_VS = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v3}
"""


@pytest.fixture
def mesh(tmp_path: Path) -> MeshDir:
    return MeshDir(tmp_path / "mesh").create()


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]):
    def runner(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return runner


def lines(text: str, needle: str) -> list[str]:
    return [line for line in text.splitlines() if needle in line]


def test_apply_reports_what_you_applied_and_notes_earlier_findings_once(run, mesh) -> None:
    code, out, err = run("--mesh-dir", str(mesh.root), "apply", "-f", DR_ALL)
    assert code == 0
    assert len(lines(err, "Warning [IST0173]")) == 3  # ratings v2, v2-mysql, v2-mysql-vm
    assert "destinationrule.networking.istio.io/ratings created" in out
    assert "note:" not in err

    code, out, err = run("--mesh-dir", str(mesh.root), "apply", "-f", VS_ALL_V1)
    assert code == 0
    assert "IST0173" not in err  # not re-printed for an unrelated file
    notes = lines(err, "note: the live config")
    assert len(notes) == 1 and "3 warnings" in notes[0]
    assert "virtualservice.networking.istio.io/reviews created" in out


def test_a_dangling_subset_is_refused_with_the_order_then_allowed_on_request(
    run, mesh, tmp_path
) -> None:
    path = tmp_path / "vs.yaml"
    path.write_text(DANGLING_VS)
    code, out, err = run("--mesh-dir", str(mesh.root), "apply", "-f", str(path))
    assert code == 1 and out == ""
    assert "Error [IST0101]" in err and "Apply the DestinationRule first" in err
    assert "--allow-dangling" in err and "nothing applied" in err
    assert list(mesh.config.glob("*.yaml")) == []

    code, out, err = run("apply", "-f", str(path), "--allow-dangling", "--mesh-dir", str(mesh.root))
    assert code == 0, err
    assert "Warning [IST0101]" in err and "applied anyway" in err
    written = next(mesh.config.glob("*.yaml")).read_text()
    assert "meshlab.io/allow-dangling" in written
    # The manager's validation sees the annotation too: a warning, not a refusal.
    code, out, err = run(
        "analyze", "--mesh-dir", str(mesh.root), str(next(mesh.config.glob("*.yaml")))
    )
    assert code == 0 and "Warning [IST0101]" in out


def test_analyze_with_the_live_destination_rules_knows_their_subsets(
    run, mesh, monkeypatch
) -> None:
    assert run("--mesh-dir", str(mesh.root), "apply", "-f", DR_ALL)[0] == 0
    code, out, _ = run("analyze", "--offline", "--mesh-dir", str(mesh.root), VS_ALL_V1)
    assert code == 1 and "IST0101" in out  # alone, the subsets are not defined
    code, out, _ = run("--mesh-dir", str(mesh.root), "analyze", VS_ALL_V1)
    assert code == 0 and "IST0101" not in out and "✔ No validation issues found" in out
    assert len(lines(out, "note: the live config")) == 1
    code, out, _ = run("analyze", VS_ALL_V1, "--mesh-dir", str(mesh.root))
    assert code == 0 and "IST0101" not in out
    monkeypatch.setenv("MESH_DIR", str(mesh.root))
    code, out, _ = run("analyze", VS_ALL_V1)
    assert code == 0 and "IST0101" not in out


def _manager_status(mesh: MeshDir, **fields: object) -> None:
    status = {"heartbeat": time.time(), "pid": 1, "version": 3, "warnings": [], "rejected": None}
    status.update(fields)
    write_json(mesh.manager_status, status)


def _issue(severity: str, code: str, message: str) -> dict:
    return {
        "severity": severity,
        "code": code,
        "message": message,
        "kind": "DestinationRule",
        "name": "ratings",
        "file": "config/dr.yaml",
        "line": 3,
        "path": "subsets[1]",
    }


def test_status_says_accepted_with_its_warnings_and_never_above_errors(run, mesh) -> None:
    _manager_status(
        mesh,
        warnings=[
            _issue("Warning", "IST0173", "selects no pods"),
            _issue("Info", "MSH0008", "lab"),
        ],
    )
    code, out, _ = run("--mesh-dir", str(mesh.root), "status")
    assert "config: accepted, 1 warning, 1 note" in out
    assert lines(out, "Warning [IST0173]") and not lines(out, "Error")

    _manager_status(
        mesh,
        rejected={"at": time.time(), "issues": [_issue("Error", "IST0101", "subset not defined")]},
        warnings=[_issue("Warning", "IST0173", "selects no pods")],
    )
    code, out, _ = run("--mesh-dir", str(mesh.root), "status")
    assert "accepted" not in out
    assert "config: REJECTED" in out and "1 error" in out
    assert lines(out, "Error [IST0101]")


def test_status_json_of_the_manager_never_lists_errors_as_warnings(mesh, tmp_path) -> None:
    """The manager writes errors only under "rejected": an accepted config has none."""
    from mesh.manager.service import Manager
    from tests.helpers import COURSE

    (mesh.config / "dr.yaml").write_text(Path(DR_ALL).read_text())
    manager = Manager(mesh, topology=COURSE, log=open("/dev/null", "w"))  # noqa: SIM115
    manager.evaluate()
    status = json.loads(mesh.manager_status.read_text())
    assert status["rejected"] is None
    assert {w["severity"] for w in status["warnings"]} <= {"Warning", "Info"}


def test_a_refusal_names_the_live_resources_the_change_would_break(run, mesh, tmp_path) -> None:
    for path in (DR_ALL, str(BOOKINFO / "virtual-service-reviews-v3.yaml")):
        assert run("--mesh-dir", str(mesh.root), "apply", "-f", path)[0] == 0
    only_v1 = tmp_path / "reviews-dr.yaml"
    only_v1.write_text(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\n"
        "spec:\n  host: reviews\n  subsets:\n  - {name: v1, labels: {version: v1}}\n"
    )
    before = {p.name: p.read_text() for p in mesh.config.glob("*.yaml")}
    code, out, err = run("--mesh-dir", str(mesh.root), "apply", "-f", str(only_v1))
    assert code == 1 and out == ""
    assert "live resources you did not give would break" in err
    broken = lines(err, "  Error [IST0101] (VirtualService reviews")
    assert len(broken) == 1 and 'subset "v3"' in broken[0]
    assert {p.name: p.read_text() for p in mesh.config.glob("*.yaml")} == before
