"""mesh.lab.pod: the command lines it builds, and supervision of real child processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mesh.lab import pod as podmod
from mesh.lab.pod import ChildSpec, PodPorts, build_children, find_pod, supervise
from mesh.topology import Pod, ReadinessProbe
from tests.helpers import COURSE

REPO = Path(__file__).resolve().parents[3]
PY = sys.executable


def _argv_options(argv: tuple[str, ...]) -> dict[str, str]:
    """``--flag value`` pairs of a command line (every sidecar option takes a value)."""
    rest = list(argv[argv.index("mesh.sidecar") + 1 :])
    assert len(rest) % 2 == 0, rest
    return dict(zip(rest[::2], rest[1::2], strict=True))


# ---------------------------------------------------------------------------- pure part


def test_app_command_runs_the_pods_service_under_gunicorn() -> None:
    app, _ = build_children(_pod("reviews-v2"), mesh_dir="/mesh", python="/py", base_env={})
    assert app.name == "app"
    assert app.argv == (
        "/py",
        "-m",
        "gunicorn",
        "-c",
        "python:services.gunicorn_conf",
        "services.reviews.app:create_app()",
    )


def test_app_environment_points_http_proxy_at_the_sidecar_outbound_port() -> None:
    app, _ = build_children(
        _pod("reviews-v3"),
        mesh_dir="/mesh",
        ports=PodPorts(service=19080, app=19081, outbound=25001, admin=25000),
        base_env={"PATH": "/bin", "LANG": "C.UTF-8"},
    )
    env = dict(app.env)
    assert env["PORT"] == "19081"
    assert env["SERVICE_NAME"] == "reviews"
    assert env["SERVICE_VERSION"] == "v3"
    assert env["POD_NAME"] == "reviews-v3"
    assert env["HTTP_PROXY"] == env["http_proxy"] == "http://127.0.0.1:25001"
    assert env["NO_PROXY"] == env["no_proxy"] == "localhost,127.0.0.1"
    assert env["PATH"] == "/bin" and env["LANG"] == "C.UTF-8"  # the base env passes through


def test_pod_env_from_the_topology_reaches_the_app_only() -> None:
    app, sidecar = build_children(_pod("details-v2-failing"), mesh_dir="/m", base_env={})
    assert app.env["FAIL_MODE"] == "503"
    assert "FAIL_MODE" not in sidecar.env
    healthy, _ = build_children(_pod("details-v2"), mesh_dir="/m", base_env={})
    assert "FAIL_MODE" not in healthy.env


def test_proxy_settings_override_an_inherited_proxy() -> None:
    app, _ = build_children(
        _pod("productpage-v1"),
        mesh_dir="/m",
        base_env={"http_proxy": "http://corporate:3128", "HTTP_PROXY": "http://corporate:3128"},
    )
    assert app.env["http_proxy"] == app.env["HTTP_PROXY"] == "http://127.0.0.1:15001"


def test_sidecar_command_follows_the_cli_contract() -> None:
    _, sidecar = build_children(
        _pod("productpage-v2"),
        mesh_dir="/mesh",
        ports=PodPorts(service=9080, app=9081, outbound=15001, admin=15000),
        bind_address="0.0.0.0",
        advertise_address="productpage-v2",
        python="/py",
        base_env={},
    )
    assert sidecar.name == "sidecar"
    # -OO: docstrings compiled out (mesh.sidecar.memory_budget says why).
    assert sidecar.argv[:4] == ("/py", "-OO", "-m", "mesh.sidecar")
    assert _argv_options(sidecar.argv) == {
        "--pod": "productpage-v2",
        "--service": "productpage",
        "--labels": "app=productpage,version=v2,workload=productpage-v2",
        "--namespace": "default",
        "--service-account": "bookinfo-productpage",
        "--workload": "productpage-v2",
        "--mesh-dir": "/mesh",
        "--inbound-port": "9080",
        "--app-port": "9081",
        "--outbound-port": "15001",
        "--admin-port": "15000",
        "--bind-address": "0.0.0.0",
        "--advertise-address": "productpage-v2",
        "--probe-path": "/health",
        "--probe-initial-delay": "0",
        "--probe-period": "1",
        "--probe-timeout": "2",
        "--probe-failure-threshold": "2",
        "--probe-success-threshold": "1",
    }
    assert sidecar.env["MESH_DIR"] == "/mesh"


def test_process_mode_names_the_container_port_for_the_service_port_lookup() -> None:
    """A pod on a loopback port of its own (process mode) tells its sidecar the container
    port its Service's targetPort names (SERVER span names); a container needs not."""
    pod = Pod("httpbin.foo", {"app": "httpbin"}, namespace="foo", port=8080)
    _, sidecar = build_children(pod, mesh_dir="/m", ports=PodPorts(41001, 41002, 41003, 41004),
                                base_env={})  # fmt: skip
    options = _argv_options(sidecar.argv)
    assert (options["--inbound-port"], options["--container-port"]) == ("41001", "8080")
    _, sidecar = build_children(pod, mesh_dir="/m", ports=PodPorts(8080, 8081), base_env={})
    assert "--container-port" not in _argv_options(sidecar.argv)
    legacy = Pod("sleep.legacy", {"app": "sleep"}, namespace="legacy", proxy="none")
    _, sidecar = build_children(legacy, mesh_dir="/m", ports=PodPorts(41001, 41002), base_env={})
    assert "--container-port" not in sidecar.argv and sidecar.argv[-1] == "--no-sidecar"


def test_sidecar_probe_options_come_from_the_pods_readiness_probe() -> None:
    pod = Pod(
        "reviews-slow",
        {"app": "reviews", "version": "v9"},
        readiness=ReadinessProbe(
            path="/ready",
            initial_delay_seconds=2.5,
            period_seconds=0.5,
            timeout_seconds=0.25,
            failure_threshold=4,
            success_threshold=2,
        ),
    )
    _, sidecar = build_children(pod, mesh_dir="/m", base_env={})
    options = _argv_options(sidecar.argv)
    assert options["--probe-path"] == "/ready"
    assert options["--probe-initial-delay"] == "2.5"
    assert options["--probe-period"] == "0.5"
    assert options["--probe-timeout"] == "0.25"
    assert options["--probe-failure-threshold"] == "4"
    assert options["--probe-success-threshold"] == "2"


def test_build_children_does_not_mutate_the_base_env() -> None:
    base = {"A": "1"}
    build_children(_pod("ratings-v1"), mesh_dir="/m", base_env=base)
    assert base == {"A": "1"}


@pytest.mark.parametrize("pod", COURSE.app_pods, ids=lambda p: p.name)
def test_every_topology_pod_builds(pod: Pod) -> None:
    app, sidecar = build_children(pod, mesh_dir="/m", base_env={})
    assert app.argv[-1] == f"services.{pod.service}.app:create_app()"
    assert _argv_options(sidecar.argv)["--pod"] == pod.name


def test_find_pod_names_the_known_pods_when_unknown() -> None:
    with pytest.raises(KeyError, match="productpage-v1"):
        _pod("nope-v1")


def test_default_advertise_address() -> None:
    assert podmod.default_advertise_address("127.0.0.1") == "127.0.0.1"
    assert podmod.default_advertise_address("127.0.0.5") == "127.0.0.1"
    assert podmod.default_advertise_address("10.1.2.3") == "10.1.2.3"
    assert podmod.default_advertise_address("reviews-v1") == "reviews-v1"
    wildcard = podmod.default_advertise_address("0.0.0.0")
    assert wildcard and wildcard != "0.0.0.0"


def test_main_unknown_pod_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert podmod.main(["nope"]) == 2
    assert "unknown pod" in capsys.readouterr().err


def test_cli_dry_run() -> None:
    out = subprocess.run(
        [PY, "-m", "mesh.lab.pod", "ratings-v1", "--mesh-dir", "/mesh", "--dry-run"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    lines = out.splitlines()
    assert lines[0].startswith("app: ") and "services.ratings.app:create_app()" in lines[0]
    assert lines[1].startswith("sidecar: ") and "--pod ratings-v1" in lines[1]
    assert "--mesh-dir /mesh" in lines[1]


# ---------------------------------------------------------------------- supervision


def _child(name: str, code: str, tmp: Path) -> ChildSpec:
    """A Python child that records its pid, then runs ``code``."""
    script = f"import os, pathlib, signal, sys, time\npathlib.Path({str(tmp / name)!r}).write_text(str(os.getpid()))\n"
    return ChildSpec(
        name=name, argv=(PY, "-c", script + textwrap.dedent(code)), env=dict(os.environ)
    )


def _pid(tmp: Path, name: str, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    path = tmp / name
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return int(path.read_text())
        time.sleep(0.02)
    raise AssertionError(f"{name} never started")


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper that is not us counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


SLEEPER = "time.sleep(60)\n"


def _after(tmp: Path, name: str) -> str:
    """Child code that first waits until ``name`` has started (written its pid): an exit
    before the other child is up would stop the pod while that one is still starting."""
    return f"while not pathlib.Path({str(tmp / name)!r}).exists():\n    time.sleep(0.01)\n"


def test_first_exit_stops_the_other_and_its_code_propagates(tmp_path: Path) -> None:
    quitter = _child(
        "quitter", _after(tmp_path, "sleeper") + "time.sleep(0.3)\nsys.exit(3)\n", tmp_path
    )
    sleeper = _child("sleeper", SLEEPER, tmp_path)
    start = time.monotonic()
    assert supervise([quitter, sleeper], grace_seconds=5) == 3
    assert time.monotonic() - start < 5
    assert not _alive(_pid(tmp_path, "sleeper"))


def test_clean_exit_of_one_child_stops_the_pod_with_0(tmp_path: Path) -> None:
    done = _child("done", _after(tmp_path, "sleeper") + "sys.exit(0)\n", tmp_path)
    sleeper = _child("sleeper", SLEEPER, tmp_path)
    assert supervise([sleeper, done], grace_seconds=5) == 0
    assert not _alive(_pid(tmp_path, "sleeper"))


def test_child_killed_by_a_signal_gives_128_plus_n(tmp_path: Path) -> None:
    victim = _child("victim", "os.kill(os.getpid(), signal.SIGKILL)\n", tmp_path)
    sleeper = _child("sleeper", SLEEPER, tmp_path)
    assert supervise([victim, sleeper], grace_seconds=5) == 128 + signal.SIGKILL


def test_a_child_ignoring_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    stubborn = _child(
        "stubborn", "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" + SLEEPER, tmp_path
    )
    quitter = _child(
        "quitter", _after(tmp_path, "stubborn") + "time.sleep(0.5)\nsys.exit(4)\n", tmp_path
    )
    start = time.monotonic()
    assert supervise([stubborn, quitter], grace_seconds=0.5) == 4
    elapsed = time.monotonic() - start
    assert 0.9 <= elapsed < 5, elapsed
    assert not _alive(_pid(tmp_path, "stubborn"))


def test_grandchildren_in_a_childs_process_group_do_not_outlive_the_pod(tmp_path: Path) -> None:
    # Like a gunicorn master whose worker survives it: the child spawns a grandchild, then dies.
    spawner = _child(
        "spawner",
        f"""
        import subprocess
        p = subprocess.Popen([sys.executable, "-c", "import os, pathlib, time; pathlib.Path({str(tmp_path / "grandchild")!r}).write_text(str(os.getpid())); time.sleep(60)"])
        while not pathlib.Path({str(tmp_path / "grandchild")!r}).exists():
            time.sleep(0.02)
        os._exit(5)
        """,
        tmp_path,
    )
    sleeper = _child("sleeper", SLEEPER, tmp_path)
    assert supervise([spawner, sleeper], grace_seconds=5) == 5
    grandchild = _pid(tmp_path, "grandchild")
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)


def test_orderly_stop_exits_0_unless_a_child_fails_while_stopping(tmp_path: Path) -> None:
    # The first child asks the supervisor (its parent) to stop, as `docker stop` would.
    asker = _child(
        "asker",
        """
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(7))
        os.kill(os.getppid(), signal.SIGTERM)
        time.sleep(60)
        """,
        tmp_path,
    )
    plain = _child("plain", SLEEPER, tmp_path)  # default SIGTERM action: killed, that is fine
    assert supervise([asker, plain], grace_seconds=5) == 7
    polite = _child(
        "polite",
        """
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        os.kill(os.getppid(), signal.SIGTERM)
        time.sleep(60)
        """,
        tmp_path,
    )
    assert supervise([polite, _child("plain2", SLEEPER, tmp_path)], grace_seconds=5) == 0


DRIVER = """
import os, sys, signal
from mesh.lab.pod import ChildSpec, supervise
tmp = sys.argv[1]
child = '''
import os, pathlib, signal, sys, time
name = sys.argv[1]
def bye(signum, frame):
    pathlib.Path(os.path.join({tmp!r}, name + ".got")).write_text(signal.Signals(signum).name)
    sys.exit(0)
signal.signal(signal.SIGTERM, bye)
signal.signal(signal.SIGINT, bye)
pathlib.Path(os.path.join({tmp!r}, name)).write_text(str(os.getpid()))
time.sleep(60)
'''.format(tmp=tmp)
specs = [ChildSpec(n, (sys.executable, "-c", child, n), dict(os.environ)) for n in ("a", "b")]
sys.exit(supervise(specs, grace_seconds=5))
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signals_are_forwarded_to_both_children(tmp_path: Path, signum: int) -> None:
    proc = subprocess.Popen([PY, "-c", DRIVER, str(tmp_path)], cwd=REPO)
    try:
        pids = [_pid(tmp_path, "a"), _pid(tmp_path, "b")]
        proc.send_signal(signum)
        assert proc.wait(timeout=10) == 0
        for name in ("a", "b"):
            assert (tmp_path / f"{name}.got").read_text() == signal.Signals(signum).name
        assert not any(_alive(pid) for pid in pids)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_children_die_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    proc = subprocess.Popen([PY, "-c", DRIVER, str(tmp_path)], cwd=REPO)
    pids = [_pid(tmp_path, "a"), _pid(tmp_path, "b")]
    proc.kill()
    proc.wait(timeout=10)
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in pids)


def _compose_services() -> dict[str, dict]:
    """The static compose file's services plus the pods generated from the course profile."""
    import yaml

    from mesh.lab.compose import pods_compose

    static = yaml.safe_load((REPO / "compose" / "docker-compose.yml").read_text())["services"]
    return {**static, **pods_compose(COURSE, "")["services"]}


def test_compose_containers_are_unprivileged_healthchecked_and_share_the_mesh_volume() -> None:
    for name, svc in _compose_services().items():
        assert "healthcheck" in svc, name
        volumes = svc["volumes"]
        if name == "prometheus":  # reads the scrape targets, writes nothing there
            assert svc["user"] == "1000:1000", name  # its own tmpfs is uid 1000's
            assert volumes == ["mesh:/mesh:ro"], name
            continue
        # The invoking user's ids (compose/lab.sh sets them), 1000 without lab.sh.
        assert svc["user"] == "${MESHLAB_UID:-1000}:${MESHLAB_GID:-1000}", name
        assert "mesh:/mesh" in volumes, name
        assert any(v.endswith(":/mesh/config") for v in volumes), name
        assert not any("docker.sock" in v for v in volumes), name


def test_compose_publishes_on_loopback_unless_lab_bind_says_otherwise() -> None:
    published = {name: svc["ports"] for name, svc in _compose_services().items() if "ports" in svc}
    assert {"istio-ingressgateway", "locust"} <= set(published)
    for name, ports in published.items():
        for spec in ports:
            assert spec.startswith(("${LAB_BIND:-127.0.0.1}:", "127.0.0.1:")), (name, spec)


def _pod(name: str) -> Pod:
    return find_pod(name, COURSE.app_pods)


# ---------------------------------------------------------------------------- the agent


def test_the_agent_gets_the_pod_s_identity_and_the_proxy_its_secrets_dir() -> None:
    pod = _pod("reviews-v2")
    agent = podmod.build_agent(pod, mesh_dir="/m", secrets_dir="/s", python="/py", base_env={})
    assert agent.argv[:3] == ("/py", "-m", "mesh.agent")
    options = dict(zip(agent.argv[3::2], agent.argv[4::2], strict=True))
    assert options == {
        "--pod": "reviews-v2", "--namespace": pod.namespace,
        "--service-account": pod.service_account, "--mesh-dir": "/m", "--secrets-dir": "/s",
    }  # fmt: skip
    _, sidecar = build_children(pod, mesh_dir="/m", base_env={})
    assert podmod.with_secrets(sidecar, "/s").env["MESH_SECRETS_DIR"] == "/s"


def test_the_gateway_pod_is_the_manifest_s_gateway_proxy() -> None:
    (gateway,) = COURSE.gateway_pods
    spec = podmod.build_gateway(
        gateway, mesh_dir="/m", admin_port=1500, port_map="8080:18080", python="/py", base_env={}
    )
    assert spec.argv[:5] == ("/py", "-OO", "-m", "mesh.sidecar", "--gateway")
    options = dict(zip(spec.argv[5::2], spec.argv[6::2], strict=True))
    assert options["--pod"] == gateway.name
    assert options["--service-account"] == gateway.service_account
    assert options["--namespace"] == gateway.namespace
    assert options["--gateway-port-map"] == "8080:18080"
    assert dict(i.split("=") for i in options["--labels"].split(",")) == dict(gateway.labels)


@pytest.mark.parametrize(
    ("pod", "agent"), [("sleep.foo", True), ("sleep.legacy", False), ("istio-ingressgateway", True)]
)
def test_dry_run_runs_an_agent_for_every_proxy_and_none_without(
    pod: str, agent: bool, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mesh.lab.workloads import entries_env, lab_entries

    monkeypatch.setenv("MESHLAB_WORKLOADS", entries_env(lab_entries("security")))
    code = podmod.main([pod, "--secrets-dir", "/s", "--dry-run"])
    assert code == 0
    out = capsys.readouterr().out
    assert ("agent: " in out) == agent
    assert "MESH_SECRETS_DIR" not in out  # in the environment, not on the command line
