"""The apply transaction of the control plane: lock, plan, validate, commit, wait for sync.

``meshctl apply`` / ``delete`` and the lab's baseline go through here; they print what the
transaction reports. Primitives:

- ``apply_resources(mesh, resources, input_issues, topology)`` / ``delete_keys(mesh, keys,
  topology)``: under the exclusive config lock, read ``config/``, plan the change
  (``configdir``), validate the *whole* resulting config against the topology (with the
  registry's live pods), then write it all or nothing and tell the manager ("publish now").
  What an apply reports is the contract in README ("apply and status output"): the findings
  about what you applied, kubectl's line per resource, and once, a note when live resources
  you did not touch still carry warnings; a refusal names every error that refuses it,
  including the errors the change causes in live resources.
- ``with_annotation(resource, name, value)``: ``--allow-dangling`` marks what it applies.
- ``wait_synced(mesh, expected, since, timeout)``: poll the snapshot and every live proxy's
  status until the manager published the change and every proxy applied that version.
- ``snapshot_has(snapshot, expected)``: does a snapshot hold the expected resources (in the
  normal form the manager publishes)?

Each returns an ``Outcome``: an exit code (``OK``; ``REFUSED``: refused or not found, nothing
written; ``NO_MESH``: no mesh, the manager refused, or the wait timed out) and the ``Line``s
to show, in order, in kubectl's and istioctl's words.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mesh.config.issues import Issue
from mesh.config.loader import latest_definitions, load_text
from mesh.config.normal_form import to_normal
from mesh.config.resource import Resource
from mesh.config.validate.analyzer import ALLOW_DANGLING
from mesh.manager.analysis import analyze_all as analyze
from mesh.manager.compile import blocking, resource_key, sort_resources
from mesh.manager.configdir import (
    KIND_GROUPS,
    KINDS,
    ChangePlan,
    Key,
    ResourceNameError,
    commit,
    kind_ref,
    plan_apply,
    plan_delete,
    read_files,
)
from mesh.manager.findings import live_note, sort_issues, split_by_file
from mesh.manager.observe import ManagerView, MeshState
from mesh.manager.registry import is_fresh, validation_topology
from mesh.meshdir import MeshDir, config_lock, mark_applied
from mesh.snapshot import Snapshot
from mesh.topology import Topology

OK, REFUSED, NO_MESH = 0, 1, 2

Expected = dict[Key, dict[str, Any] | None]


@dataclass(frozen=True, slots=True)
class Line:
    """One line to show: on standard error when ``err`` (findings, refusals), else output."""

    text: str
    err: bool = False


@dataclass
class Outcome:
    """What an apply, delete or wait did (or would have done), and what to tell the user."""

    code: int
    lines: list[Line] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    plan: ChangePlan | None = None
    expected: Expected = field(default_factory=dict)
    written_at: float = 0.0

    def say(self, text: str, *, err: bool = False) -> None:
        self.lines.append(Line(text, err))

    def report(self, issues: Sequence[Issue], indent: str = "") -> None:
        self.lines.extend(Line(f"{indent}{issue}", True) for issue in issues)

    @property
    def text(self) -> str:
        return "".join(f"{line.text}\n" for line in self.lines)


def key_text(key: Key) -> str:
    kind, namespace, name = key
    return f"{kind_ref(kind)}/{name}" + (f" -n {namespace}" if namespace != "default" else "")


def plural_ref(kind: str) -> str:
    return f"{KINDS[kind]}.{KIND_GROUPS[kind]}"


def expected_state(resources: Sequence[Resource]) -> Expected:
    """What the snapshot must hold once these resources are published (normal form)."""
    return {resource_key(to_normal(r)): sort_resources([to_normal(r)])[0] for r in resources}


def validate_plan(
    mesh: MeshDir, plan: ChangePlan, incoming: Sequence[Resource], topology: Topology, now: float
) -> list[Issue]:
    """Findings on the whole config as it would be: kept documents plus the incoming ones."""
    resources: list[Resource] = []
    issues: list[Issue] = []
    for name, text in sorted(plan.kept.items()):
        if not text.strip():
            continue
        result = load_text(text, str(mesh.config / name))
        resources.extend(result.resources)
        issues.extend(result.issues)
    # The manager loads config/ file by file in name order: the same rule here.
    resources = latest_definitions(resources)
    resources.extend(incoming)
    state = MeshState.read(mesh, with_snapshot=False)
    if resources:
        issues.extend(analyze(resources, validation_topology(topology, state.records, now)))
    return issues


def apply_resources(
    mesh: MeshDir,
    resources: Sequence[Resource],
    input_issues: Sequence[Issue],
    topology: Topology,
    *,
    prune: bool = False,
    allow_dangling: bool = False,
) -> Outcome:
    """Validate the resulting config and write it, or write nothing (``MeshDirError`` when the
    config lock cannot be had). ``allow_dangling``: references to subsets, hosts or gateways
    that are not defined are applied, as Istio does, with a warning each."""
    if allow_dangling:
        resources = [with_annotation(r, ALLOW_DANGLING, "true") for r in resources]
    if not resources and not any(i.is_error for i in input_issues):
        outcome = Outcome(REFUSED, issues=list(input_issues))
        outcome.report(input_issues)
        outcome.say("error: no objects passed to apply", err=True)
        return outcome
    given = {r.source.file for r in resources} | {i.file for i in input_issues if i.file}
    with config_lock(mesh):
        files = read_files(mesh.config)
        try:
            plan = plan_apply(files, [r.raw for r in resources], prune=prune)
        except ResourceNameError as exc:
            outcome = Outcome(REFUSED)
            outcome.say(f"error: {exc}; nothing applied", err=True)
            return outcome
        issues = [*input_issues, *validate_plan(mesh, plan, resources, topology, time.time())]
        mine, elsewhere = split_by_file(issues, given)
        refused = blocking(issues)
        if refused:
            outcome = Outcome(REFUSED, issues=issues, plan=plan)
            outcome.report(sort_issues(mine))
            caused = blocking(elsewhere)
            if caused:
                outcome.say(
                    "error: with this change, live resources you did not give would break:",
                    err=True,
                )
                outcome.report(sort_issues(caused), indent="  ")
            outcome.say(
                f"error: {len(refused)} error(s) in the resulting config; nothing applied "
                "(the mesh keeps its current config)",
                err=True,
            )
            return outcome
        commit(mesh.config, plan)
        if plan.changes:
            mark_applied(mesh)
        written_at = time.time()
    expected = expected_state(resources)
    expected.update({key: None for key, action in plan.outcomes if action == "pruned"})
    outcome = Outcome(OK, issues=issues, plan=plan, expected=expected, written_at=written_at)
    outcome.report(sort_issues(mine))  # warnings (IST0173 ...) do not stop an apply
    for key, action in plan.outcomes:
        outcome.say(f"{key_text(key)} {action}")
    note = live_note(elsewhere, str(mesh.config))
    if note:
        outcome.say(note, err=True)
    return outcome


def with_annotation(resource: Resource, name: str, value: str) -> Resource:
    """``resource`` with ``metadata.annotations[name] = value`` in its document."""
    raw = dict(resource.raw)
    metadata = dict(raw.get("metadata") or {})
    annotations = dict(metadata.get("annotations") or {})
    annotations[name] = value
    metadata["annotations"] = annotations
    raw["metadata"] = metadata
    return dataclasses.replace(resource, raw=raw)


def delete_keys(mesh: MeshDir, keys: Sequence[Key], topology: Topology) -> Outcome:
    with config_lock(mesh):
        files = read_files(mesh.config)
        plan = plan_delete(files, keys)
        missing = [key for key, action in plan.outcomes if action == "not found"]
        found = [key for key, action in plan.outcomes if action == "deleted"]
        issues: list[Issue] = []
        if found:
            issues = validate_plan(mesh, plan, [], topology, time.time())
            refused = blocking(issues)
            if refused:
                outcome = Outcome(REFUSED, issues=issues, plan=plan)
                outcome.report(sort_issues(refused))
                names = ", ".join(key_text(k) for k in found)
                outcome.say(
                    f"error: deleting {names} would leave the config broken; nothing deleted",
                    err=True,
                )
                return outcome
            commit(mesh.config, plan)
            mark_applied(mesh)
        written_at = time.time()
    expected: Expected = {key: None for key in found}
    outcome = Outcome(REFUSED if missing else OK, [], issues, plan, expected, written_at)
    for key in found:
        outcome.say(f'{kind_ref(key[0])} "{key[2]}" deleted')
    for key in missing:
        outcome.say(
            f'Error from server (NotFound): {plural_ref(key[0])} "{key[2]}" not found', err=True
        )
    return outcome


def snapshot_has(snapshot: Snapshot, expected: Mapping[Key, Mapping[str, Any] | None]) -> bool:
    """Does ``snapshot`` hold every expected resource (None: the resource is gone)?"""
    present = {resource_key(r): r for r in snapshot.resources}
    for key, raw in expected.items():
        if raw is None:
            if key in present:
                return False
        elif present.get(key) != raw:
            return False
    return True


def wait_synced(
    mesh: MeshDir,
    expected: Mapping[Key, Mapping[str, Any] | None],
    since: float,
    timeout: float,
    *,
    clock: Callable[[], float] = time.time,
    interval: float = 0.02,
) -> Outcome:
    """Until the manager published ``expected`` and every live proxy applied that version."""
    deadline = time.monotonic() + timeout
    version: int | None = None
    lagging: list[str] = []
    manager = ManagerView.from_status(None, clock())
    outcome = Outcome(NO_MESH)
    while True:
        now = clock()
        state = MeshState.read(mesh)
        manager = ManagerView.from_status(state.manager, now)
        snap = state.snapshot
        if version is None and snap is not None:
            # Either the snapshot visibly holds the change, or the manager read config/ after
            # the write, accepted it and this is what it published.
            read_after = manager.config_read_at is not None and manager.config_read_at >= since
            if snapshot_has(snap, expected) or (
                read_after and not manager.rejected and manager.version == snap.version
            ):
                version = snap.version
        if version is None and manager.rejected_at is not None and manager.rejected_at >= since:
            outcome.say(
                "error: the manager refused the config; the mesh keeps its previous version:",
                err=True,
            )
            for issue in manager.rejected:
                outcome.say("  " + str(Issue.from_json(issue)), err=True)
            return outcome
        if version is not None:
            lagging = []
            for record in state.records:
                if not is_fresh(record, now):
                    continue  # a dead pod is out of the mesh, not a laggard
                status = state.statuses.get(record.pod)
                applied = status.version if status else None
                if applied is None or applied < version:
                    error = status.error if status else None
                    at = "no status" if applied is None else f"at version {applied}"
                    lagging.append(f"{record.pod} ({at}{f', error: {error}' if error else ''})")
            if not lagging:
                count = sum(1 for r in state.records if is_fresh(r, now))
                outcome.code = OK
                outcome.say(f"synced: version {version} applied by {count} proxies")
                return outcome
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    if version is None:
        why = (
            "the manager is not running"
            if not manager.alive
            else "the manager has not published it yet"
        )
        outcome.say(f"error: timed out after {timeout:g}s: {why}", err=True)
    else:
        outcome.say(
            f"error: timed out after {timeout:g}s waiting for version {version}; "
            f"not synced: {', '.join(lagging)}",
            err=True,
        )
    return outcome
