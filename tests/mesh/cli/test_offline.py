"""meshctl analyze and meshctl route, run as a trainee would, on the scenario files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mesh.cli.meshctl import main

SCENARIOS = Path("scenarios")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def simulate(capsys, scenario: str, *args: str) -> dict:
    files = ["-f", str(SCENARIOS / "reset.yaml")]
    if scenario != "reset":
        files += ["-f", str(SCENARIOS / f"{scenario}.yaml")]
    code, out, err = run(capsys, "route", *files, "-n", "1000", "-o", "json", *args)
    assert code == 0, err
    return json.loads(out)


# The security module's stages run on their own profiles (README, "Mutual TLS..."), alone.
PROFILE_OF = {"mtls-": "security", "rotation": "security", "authz-": "istio"}


def test_every_scenario_is_clean_on_top_of_the_baseline(capsys) -> None:
    for path in sorted(SCENARIOS.glob("*.yaml")):
        profile = next((p for prefix, p in PROFILE_OF.items() if path.stem.startswith(prefix)), "")
        if profile:
            code, out, _ = run(capsys, "analyze", "--offline", "--profile", profile, str(path))
            assert code == 0 and "✔ No validation issues found" in out, (path, out)
            continue
        code, out, _ = run(capsys, "analyze", str(SCENARIOS / "reset.yaml"), str(path))
        assert code == 0, out
        assert "✔ No validation issues found" in out or "Warning" in out


def test_analyze_reports_every_error_istio_style_and_exits_1(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: networking.istio.io/v1beta1\nkind: VirtualService\nmetadata:\n  name: reviews\n"
        "spec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination:\n        host: reviews\n"
        "        subset: v9\n      wieght: 10\n"
    )
    code, out, _ = run(capsys, "analyze", str(SCENARIOS / "reset.yaml"), str(bad))
    assert code == 1
    assert (
        f"Error [IST0101] (VirtualService reviews {bad}:11) http[0].route[0].destination.subset: "
        in out
    )
    assert 'subset "v9" is not defined for host reviews' in out
    assert "wieght" in out and 'did you mean "weight"?' in out


def test_analyze_warnings_exit_0(tmp_path, capsys) -> None:
    code, out, _ = run(
        capsys, "analyze", str(SCENARIOS / "reset.yaml"), str(SCENARIOS / "circuit-breaker.yaml")
    )
    assert code == 0 and "Warning [IST0133]" in out and "consecutiveErrors" in out


def test_analyze_missing_path_and_garbage_never_trace(tmp_path, capsys) -> None:
    code, _, err = run(capsys, "analyze", str(tmp_path / "nope.yaml"))
    assert code == 1 and "no such file" in err
    garbage = tmp_path / "garbage.yaml"
    garbage.write_bytes(b"\x00\x01{{{:::")
    code, out, _ = run(capsys, "analyze", str(garbage))
    assert code == 1 and "Traceback" not in out


def test_baseline_sends_everyone_to_v1(capsys) -> None:
    result = simulate(capsys, "reset", "--host", "reviews", "-H", "end-user: tester")
    assert result["destinations"] == {"reviews/v1": 1000}


@pytest.mark.parametrize(
    ("scenario", "user", "expected"),
    [
        ("dark-launch", "tester", {"reviews/v2": 1000}),
        ("dark-launch", None, {"reviews/v1": 1000}),
        ("delay", None, {"reviews/v1": 1000}),
        ("abort", None, {"reviews/v1": 1000}),
        ("readiness", None, {"reviews": 1000}),
    ],
)
def test_reviews_scenarios(capsys, scenario: str, user: str | None, expected: dict) -> None:
    headers = ["-H", f"end-user: {user}"] if user else []
    result = simulate(capsys, scenario, "--host", "reviews", *headers)
    assert result["destinations"] == expected
    # DESIGN's contract lists 503 even when no abort fired (or is configured).
    assert result["aborted"] == {"503": 0} and result["delayed"] == 0


def test_route_json_lists_every_configured_abort_status(tmp_path, capsys) -> None:
    vs = tmp_path / "teapot.yaml"
    vs.write_text(
        "apiVersion: networking.istio.io/v1beta1\nkind: VirtualService\n"
        "metadata: {name: ratings}\nspec:\n  hosts: [ratings]\n  http:\n"
        "  - match: [{headers: {end-user: {exact: tea}}}]\n"
        "    fault: {abort: {httpStatus: 418, percentage: {value: 100}}}\n"
        "    route: [{destination: {host: ratings}}]\n"
        "  - route: [{destination: {host: ratings}}]\n"
    )
    code, out, _ = run(
        capsys, "route", "-f", str(vs), "--host", "ratings", "-n", "10", "-o", "json"
    )
    assert code == 0 and json.loads(out)["aborted"] == {"418": 0, "503": 0}
    code, out, _ = run(capsys, "route", "-f", str(vs), "--host", "ratings", "-n", "10",
                       "-H", "end-user: tea", "-o", "json")  # fmt: skip
    assert code == 0 and json.loads(out)["aborted"] == {"418": 10, "503": 0}


def test_delay_for_tester(capsys) -> None:
    result = simulate(capsys, "delay", "--host", "reviews", "-H", "end-user: tester")
    assert result["destinations"] == {"reviews/v2": 1000} and result["delayed"] == 1000


def test_abort_for_tester_is_about_half(capsys) -> None:
    result = simulate(capsys, "abort", "--host", "reviews", "-H", "end-user: tester")
    aborted = result["aborted"]["503"]
    assert abs(aborted - 500) <= 3.29 * (1000 * 0.25) ** 0.5  # binomial 99.9 %
    assert result["destinations"] == {"reviews/v2": 1000 - aborted}


@pytest.mark.parametrize(
    ("scenario", "host", "expected"),
    [
        ("blue-green", "bookinfo.local", {"productpage/v1": 1000}),
        ("blue-green", "test.bookinfo.local", {"productpage/v2": 1000}),
        ("blue-green-switch", "bookinfo.local", {"productpage/v2": 1000}),
        ("blue-green-switch", "test.bookinfo.local", {"productpage/v1": 1000}),
        ("blue-green-back", "bookinfo.local", {"productpage/v1": 1000}),
        ("canary-70-30", "bookinfo.local", {"productpage/v1": 700, "productpage/v2": 300}),
        ("canary-5-95", "bookinfo.local", {"productpage/v1": 50, "productpage/v2": 950}),
        ("canary-sticky", "bookinfo.local", {"productpage/v1": 700, "productpage/v2": 300}),
    ],
)
def test_gateway_scenarios(capsys, scenario: str, host: str, expected: dict) -> None:
    result = simulate(
        capsys, scenario, "--host", host, "--gateway", "bookinfo-gateway", "--path", "/productpage"
    )
    assert result["destinations"] == expected


def test_sticky_cookie_pins_v2(capsys) -> None:
    result = simulate(
        capsys,
        "canary-sticky",
        "--host",
        "bookinfo.local",
        "--gateway",
        "bookinfo-gateway",
        "--path",
        "/productpage",
        "-H",
        "cookie: session=x; product-page=v2",
    )
    assert result["destinations"] == {"productpage/v2": 1000}


def test_circuit_breaker_routes_details_to_v2(capsys) -> None:
    result = simulate(capsys, "circuit-breaker", "--host", "details")
    assert result["destinations"] == {"details/v2": 1000}


def test_gateway_path_outside_bookinfo_is_no_route(capsys) -> None:
    result = simulate(
        capsys,
        "reset",
        "--host",
        "bookinfo.local",
        "--gateway",
        "bookinfo-gateway",
        "--path",
        "/admin",
    )
    assert result["no_route"] == 1000 and result["destinations"] == {}


def test_route_refuses_broken_config_and_bad_arguments(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\n"
        "spec: {hosts: [reviews], http: [{route: [{destination: {host: reviews, subset: v9}}]}]}\n"
    )
    code, _, err = run(capsys, "route", "-f", str(bad), "--host", "reviews")
    assert code == 1 and "v9" in err
    code, _, err = run(
        capsys, "route", "-f", str(SCENARIOS / "reset.yaml"), "--host", "reviews", "-H", "no-colon"
    )
    assert code == 2 and "name: value" in err
    code, _, err = run(capsys, "route", "--host", "reviews")
    assert code == 2 and "--mesh-dir" in err


def test_table_output_and_the_console_script() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "mesh.cli.meshctl",
            "route",
            "-f",
            "scenarios/reset.yaml",
            "-f",
            "scenarios/canary-70-30.yaml",
            "--host",
            "bookinfo.local",
            "--gateway",
            "bookinfo-gateway",
            "--path",
            "/productpage",
            "-n",
            "10",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "productpage/v1" in out and "70.0%" in out and "30.0%" in out


def test_analyze_with_a_live_registry_knows_which_pods_exist(tmp_path, capsys) -> None:
    registry = tmp_path / "registry"
    registry.mkdir()
    import time

    (registry / "reviews-v1.json").write_text(
        json.dumps(
            {
                "pod": "reviews-v1",
                "service": "reviews",
                "address": "127.0.0.1",
                "port": 9080,
                "labels": {"app": "reviews", "version": "v1"},
                "ready": True,
                "heartbeat": time.time(),
                "ttl": 60,
                "role": "sidecar",
            }
        )
    )
    code, out, _ = run(
        capsys, "--mesh-dir", str(tmp_path), "analyze", str(SCENARIOS / "reset.yaml")
    )
    assert code == 0  # IST0173 is a warning in the lab (Lab decision 10)
    reviews = [line for line in out.splitlines() if "(DestinationRule reviews " in line]
    assert [line.split(") ")[1].split(":")[0] for line in reviews] == ["subsets[1]", "subsets[2]"]
    assert all(line.startswith("Warning [IST0173]") for line in reviews)
