"""The pod's secrets directory as the sidecar reads it: generations, modes, the atomic
``current`` swap, and the previous generation kept for a sidecar that just opened it."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from mesh.agent import secrets

META = {"identity": "spiffe://cluster.local/ns/foo/sa/sleep", "serial": "1"}


def _files(n: int) -> dict[str, bytes]:
    return {
        secrets.KEY_FILE: f"key {n}".encode(),
        secrets.CHAIN_FILE: f"chain {n}".encode(),
        secrets.ROOT_FILE: b"root",
    }


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_generation_has_the_contract_s_files_and_modes(tmp_path: Path) -> None:
    directory = tmp_path / "secrets"
    generation = secrets.write_generation(directory, _files(1), META)
    assert generation.name == "..gen-1"
    assert os.readlink(directory / "current") == "..gen-1"
    assert _mode(directory) == 0o700
    assert _mode(generation) == 0o700
    assert _mode(generation / "key.pem") == 0o600
    assert (directory / "current" / "cert-chain.pem").read_bytes() == b"chain 1"
    assert json.loads((generation / "meta.json").read_text()) == META
    assert secrets.read_meta(directory) == META


def test_rotation_swaps_current_and_keeps_only_the_previous_generation(tmp_path: Path) -> None:
    directory = tmp_path / "secrets"
    for n in range(1, 5):
        secrets.write_generation(directory, _files(n), {**META, "serial": str(n)})
    assert secrets.generations(directory) == [3, 4]
    assert secrets.current_generation(directory) == 4
    assert secrets.read_meta(directory) == {**META, "serial": "4"}
    assert not [p for p in directory.iterdir() if p.name.startswith(".current")]


def test_an_opened_up_directory_is_closed_again(tmp_path: Path) -> None:
    directory = tmp_path / "secrets"
    directory.mkdir(mode=0o755)
    os.chmod(directory, 0o755)
    secrets.prepare(directory)
    assert _mode(directory) == 0o700


def test_no_generation_or_garbage_meta_reads_none(tmp_path: Path) -> None:
    assert secrets.read_meta(tmp_path) is None
    secrets.write_generation(tmp_path / "s", _files(1), META)
    (tmp_path / "s" / "..gen-1" / "meta.json").write_text("[1")
    assert secrets.read_meta(tmp_path / "s") is None


def test_times_round_trip() -> None:
    moment = secrets.parse_time("2026-11-26T19:45:05Z")
    assert secrets.format_time(moment) == "2026-11-26T19:45:05Z"
