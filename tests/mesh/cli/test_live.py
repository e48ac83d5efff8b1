"""meshctl's live commands on a mesh directory (no manager running unless a test starts one)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from mesh.cli.meshctl import main
from mesh.meshdir import MeshDir

GATEWAY = """\
apiVersion: networking.istio.io/v1beta1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
"""
DR = """\
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
"""
VS = """\
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: NAME}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: SUBSET}
"""


def vs(subset: str = "v1", name: str = "reviews") -> str:
    return VS.replace("SUBSET", subset).replace("NAME", name)


@pytest.fixture
def mesh(tmp_path: Path) -> MeshDir:
    return MeshDir(tmp_path / "mesh").create()


@pytest.fixture
def run(mesh: MeshDir, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    def runner(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            import io

            monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main(["--mesh-dir", str(mesh.root), *args])
        out, err = capsys.readouterr()
        return code, out, err

    return runner


def files(mesh: MeshDir) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(mesh.config.glob("*.yaml"))}


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_apply_created_unchanged_configured(run, mesh, tmp_path):
    path = write(tmp_path, "in.yaml", DR + "---\n" + vs())
    code, out, err = run("apply", "-f", path)
    assert code == 0, err
    assert out.splitlines() == [
        "destinationrule.networking.istio.io/reviews created",
        "virtualservice.networking.istio.io/reviews created",
    ]
    assert set(files(mesh)) == {"destinationrule-reviews.yaml", "virtualservice-reviews.yaml"}
    assert run("apply", "-f", path)[1].count("unchanged") == 2
    code, out, _ = run("apply", "-f", "-", stdin=vs("v2"))
    assert code == 0 and out == "virtualservice.networking.istio.io/reviews configured\n"
    assert "v2" in files(mesh)["virtualservice-reviews.yaml"]


def test_invalid_apply_writes_nothing_and_names_file_line_and_field(run, mesh, tmp_path):
    run("apply", "-f", write(tmp_path, "dr.yaml", DR))
    before = files(mesh)
    code, out, err = run("apply", "-f", write(tmp_path, "bad.yaml", vs("v9")))
    assert code == 1 and out == ""
    assert "Error [IST0101] (VirtualService reviews" in err and "bad.yaml:" in err
    assert "http[0].route[0].destination.subset" in err and "nothing applied" in err
    assert files(mesh) == before


def test_a_vs_before_its_destination_rule_is_refused_together_is_fine(run, tmp_path):
    assert run("apply", "-f", write(tmp_path, "vs.yaml", vs()))[0] == 1
    assert (
        run("apply", "-f", write(tmp_path, "dr.yaml", DR), "-f", str(tmp_path / "vs.yaml"))[0] == 0
    )


def test_subset_without_pods_only_warns(run, mesh, tmp_path):
    registry = {
        "pod": "reviews-v1", "service": "reviews", "labels": {"app": "reviews", "version": "v1"},
        "address": "127.0.0.1", "port": 9080, "ready": True, "heartbeat": time.time(), "ttl": 30,
    }  # fmt: skip
    (mesh.registry / "reviews-v1.json").write_text(json.dumps(registry))
    code, out, err = run("apply", "-f", write(tmp_path, "dr.yaml", DR))
    assert code == 0 and "created" in out
    assert "IST0173" in err and 'subset "v2"' not in out


def test_apply_replaces_a_resource_in_a_hand_edited_file(run, mesh, tmp_path):
    (mesh.config / "mine.yaml").write_text("# mine\n" + DR + "---\n# keep\n" + vs())
    code, out, _ = run("apply", "-f", write(tmp_path, "vs.yaml", vs("v2")))
    assert code == 0 and "configured" in out
    assert "VirtualService" not in files(mesh)["mine.yaml"]
    assert "# mine" in files(mesh)["mine.yaml"]
    assert (
        yaml.safe_load(files(mesh)["virtualservice-reviews.yaml"])["spec"]["http"][0]["route"][0][
            "destination"
        ]["subset"]
        == "v2"
    )


def test_prune(run, mesh, tmp_path):
    run("apply", "-f", write(tmp_path, "all.yaml", DR + "---\n" + vs() + "---\n" + GATEWAY))
    code, out, _ = run("apply", "--prune", "-f", write(tmp_path, "dr.yaml", DR))
    assert code == 0
    assert "virtualservice.networking.istio.io/reviews pruned" in out
    assert set(files(mesh)) == {"destinationrule-reviews.yaml"}


@pytest.mark.parametrize(
    ("stdin", "needle"),
    [
        ("", "no objects passed to apply"),
        ("\x00\x01\x02 garbage: [", "YAML"),
        (
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: ../../etc/x}\nspec: {hosts: [a]}\n",
            "name",
        ),
        (
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: UPPER}\nspec: {hosts: [a]}\n",
            "name",
        ),
        ("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n", ""),
        ("- a\n- b\n", ""),
        ("a: &a [*a, *a]\n", ""),
    ],
    ids=["empty", "binary", "path-traversal", "uppercase", "secret", "list", "alias-loop"],
)
def test_bad_input_exits_1_without_traceback_or_files(run, mesh, stdin, needle):
    code, out, err = run("apply", "-f", "-", stdin=stdin)
    assert code == 1, (out, err)
    assert "Traceback" not in err and needle in err
    assert files(mesh) == {}
    assert [p.name for p in mesh.root.rglob("*") if p.is_file() and p.name != ".lock"] == []


def test_missing_path_and_missing_mesh(run, tmp_path, capsys, monkeypatch):
    code, _, err = run("apply", "-f", str(tmp_path / "nope.yaml"))
    assert code == 1 and "does not exist" in err
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MESH_DIR", raising=False)
    assert main(["apply", "-f", str(tmp_path / "nope.yaml")]) == 2
    assert "no live mesh" in capsys.readouterr().err
    assert main(["--mesh-dir", str(tmp_path / "absent"), "status"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_wait_without_a_manager_times_out_clearly(run, tmp_path):
    started = time.monotonic()
    code, out, err = run(
        "apply", "-f", write(tmp_path, "dr.yaml", DR), "--wait", "--timeout", "0.3"
    )
    assert code == 2 and "created" in out
    assert "timed out after 0.3s: the manager is not running" in err
    assert time.monotonic() - started < 3


def test_delete_by_name_and_file_and_refusal(run, mesh, tmp_path):
    both = write(tmp_path, "both.yaml", DR + "---\n" + vs())
    run("apply", "-f", both)
    code, _, err = run("delete", "dr", "reviews")
    assert code == 1 and "IST0101" in err and "nothing deleted" in err
    assert "destinationrule-reviews.yaml" in files(mesh)
    code, out, err = run("delete", "virtualservices", "reviews", "ghost")
    assert code == 1
    assert out == 'virtualservice.networking.istio.io "reviews" deleted\n'
    assert 'virtualservices.networking.istio.io "ghost" not found' in err
    code, out, _ = run("delete", "-f", write(tmp_path, "dr.yaml", DR))
    assert code == 0 and files(mesh) == {}
    assert run("delete", "pods", "x")[0] == 1
    assert run("delete")[0] == 1


def test_get_table_yaml_json(run, tmp_path):
    run("apply", "-f", write(tmp_path, "all.yaml", DR + "---\n" + vs() + "---\n" + GATEWAY))
    code, out, _ = run("get")
    lines = out.splitlines()
    assert lines[0].split() == ["KIND", "NAMESPACE", "NAME", "GATEWAYS", "HOSTS", "AGE"]
    assert len(lines) == 4
    assert run("get", "-n", "foo")[0] == 0
    code, out, _ = run("get", "vs", "reviews", "-o", "json")
    assert json.loads(out)["spec"]["hosts"] == ["reviews"]
    code, out, _ = run("get", "dr", "-o", "json")
    assert json.loads(out)["kind"] == "List" and len(json.loads(out)["items"]) == 1
    code, out, _ = run("get", "gw", "-o", "yaml")
    assert yaml.safe_load(out)["metadata"]["name"] == "gw"
    assert run("get", "vs", "nope")[0] == 1
    assert run("get", "pods")[0] == 1


def test_resources_keep_their_namespace_everywhere(run, tmp_path):
    """certmanager-gateway.yaml style: a Gateway and VirtualService in istio-system beside
    default's; get shows and filters by namespace, delete -n removes only that one."""
    other = GATEWAY.replace("{name: gw}", "{name: gw, namespace: istio-system}").replace(
        '"*"', "acme.example.com"
    )
    assert run("apply", "-f", write(tmp_path, "gw.yaml", GATEWAY + "---\n" + other))[0] == 0
    code, out, _ = run("get", "gw")
    rows = [line.split()[:2] for line in out.splitlines()[1:]]
    assert rows == [["default", "gw"], ["istio-system", "gw"]]
    code, out, _ = run("get", "gw", "-n", "istio-system", "-o", "json")
    assert [i["metadata"]["namespace"] for i in json.loads(out)["items"]] == ["istio-system"]
    assert run("delete", "gw", "gw", "-n", "istio-system")[0] == 0
    code, out, _ = run("get", "gw")
    assert [line.split()[:2] for line in out.splitlines()[1:]] == [["default", "gw"]]


def test_status_proxy_status_endpoints_from_files(run, mesh):
    now = time.time()
    snap = {"version": 4, "hash": "h4", "generated_at": now, "resources": [], "endpoints": []}
    (mesh.snapshot_file).write_text(json.dumps(snap))
    manager = {"version": 4, "hash": "h4", "heartbeat": now, "pid": 1, "rejected": {
        "at": now, "issues": [{"severity": "Error", "code": "IST0101", "message": "subset v9",
                               "kind": "VirtualService", "name": "reviews", "file": "config/x.yaml",
                               "line": 9, "path": "http[0]"}]}}  # fmt: skip
    (mesh.manager_status).write_text(json.dumps(manager))
    for pod, version, ready, beat in [("reviews-v1", 4, True, now), ("reviews-v2", 3, False, now),
                                      ("ratings-v1", 4, True, now - 100)]:  # fmt: skip
        record = {"pod": pod, "service": pod.split("-")[0], "address": "127.0.0.1", "port": 1,
                  "labels": {"version": pod[-2:]}, "ready": ready, "heartbeat": beat, "ttl": 10}  # fmt: skip
        (mesh.registry / f"{pod}.json").write_text(json.dumps(record))
        status = {"pod": pod, "version": version, "hash": f"h{version}", "heartbeat": now}
        if pod == "reviews-v1":  # its outlier detection ejected reviews-v2 (and one long gone)
            status["ejected"] = [{"pod": "reviews-v2", "address": "127.0.0.1:1",
                                  "cluster": "outbound|9080||reviews", "until": now + 12.5},
                                 {"pod": "ratings-v1", "until": now - 1}, {"bad": 1}]  # fmt: skip
        (mesh.status / f"{pod}.json").write_text(json.dumps(status))
    code, out, _ = run("status")
    assert code == 0
    assert (
        "REJECTED" in out and "(VirtualService reviews config/x.yaml:9) http[0]: subset v9" in out
    )
    assert "3 — 1 SYNCED, 2 STALE, 0 ERROR; 1 ready" in out
    code, out, _ = run("proxy-status")
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:]}
    assert rows["reviews-v1"][3] == "SYNCED" and rows["reviews-v2"][3] == "STALE"
    assert rows["ratings-v1"][3] == "STALE"
    code, out, _ = run("endpoints", "reviews")
    assert code == 0 and "reviews-v2" in out and "ratings" not in out
    code, out, _ = run("endpoints")
    assert "false (stale" in out
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert re.search(r"EJECTED 1[12]\.\d+s left \(by reviews-v1\)", rows["reviews-v2"])
    assert "EJECTED" not in rows["ratings-v1"] and rows["ratings-v1"].rstrip().endswith("-")
    assert run("endpoints", "nothing")[0] == 1


def test_two_concurrent_apply_streams_lose_nothing(mesh, tmp_path):
    gw = tmp_path / "gw.yaml"
    gw.write_text(GATEWAY)
    env = {**os.environ, "MESH_DIR": str(mesh.root)}
    assert subprocess.run([sys.executable, "-m", "mesh.cli.meshctl", "apply", "-f", str(gw)],
                          env=env, capture_output=True).returncode == 0  # fmt: skip
    scripts = []
    for stream in ("a", "b"):
        docs = []
        for i in range(6):
            docs.append(
                "apiVersion: networking.istio.io/v1beta1\nkind: VirtualService\n"
                f"metadata: {{name: {stream}{i}}}\nspec:\n  hosts: [{stream}{i}.example.com]\n"
                "  gateways: [gw]\n  http: [{route: [{destination: {host: reviews}}]}]\n"
            )
        paths = []
        for i, doc in enumerate(docs):
            path = tmp_path / f"{stream}{i}.yaml"
            path.write_text(doc)
            paths.append(str(path))
        code = (
            "import sys\nfrom mesh.cli.meshctl import main\n"
            f"for p in {paths!r}:\n    assert main(['apply', '-f', p]) == 0\n"
        )
        scripts.append(subprocess.Popen([sys.executable, "-c", code], env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))  # fmt: skip
    for proc in scripts:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    names = set(files(mesh))
    assert names == {"gateway-gw.yaml"} | {
        f"virtualservice-{s}{i}.yaml" for s in "ab" for i in range(6)
    }


def test_yaml_bombs_are_refused_quickly(run, tmp_path):
    bomb = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n"
    bomb += "  a0: &a0 [x, x]\n"
    bomb += "".join(f"  a{i}: &a{i} [*a{i - 1}, *a{i - 1}]\n" for i in range(1, 40))
    path = write(tmp_path, "bomb.yaml", bomb)
    started = time.monotonic()
    assert run("apply", "-f", path)[0] == 1
    code, _, err = run("delete", "-f", path)
    assert code == 1 and "no Istio resources" in err
    assert time.monotonic() - started < 10


def test_later_files_win_like_the_loader(run, mesh, tmp_path):
    first = write(tmp_path, "a.yaml", DR + "---\n" + vs("v1"))
    second = write(tmp_path, "b.yaml", vs("v2"))
    code, out, err = run("apply", "-f", first, "-f", second)
    assert code == 0, err
    assert "v2" in files(mesh)["virtualservice-reviews.yaml"]
    twice = write(tmp_path, "twice.yaml", vs("v1") + "---\n" + vs("v2"))
    code, _, err = run("apply", "-f", twice)
    assert code == 1 and "defined twice" in err


def test_wait_with_a_running_manager(run, mesh, tmp_path):
    manager = subprocess.Popen(
        [sys.executable, "-m", "mesh.manager", "--mesh-dir", str(mesh.root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # A YAML timestamp: the manager's loader and ours may render it differently, --wait
        # must still recognise the published change.
        dated = DR.replace("metadata: {name: reviews}", "metadata:\n  name: reviews\n"
                           "  annotations: {since: 2024-01-01}")  # fmt: skip
        started = time.monotonic()
        code, out, err = run("apply", "-f", write(tmp_path, "dr.yaml", dated), "--wait")
        assert code == 0, err
        assert "synced: version" in out and time.monotonic() - started < 10
        code, out, err = run("delete", "dr", "reviews", "--wait")
        assert code == 0 and "synced" in out, err
    finally:
        manager.terminate()
        manager.wait(10)
