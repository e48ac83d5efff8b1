"""Checks of values that several kinds share: regexes, string matches, durations,
percentages, header names, host and DNS-1123 names, workload selectors; and ``Findings``, the collector every
check writes to.

A rule about a field *type* (a ``StringMatch``, a ``Duration``, a ``Percent``, a header
name) lives here; a rule about a field of one kind lives in that kind's module.
"""

from __future__ import annotations

import re

import re2

from mesh.config import issues as codes
from mesh.config.issues import Issue
from mesh.config.loader import DNS1123_LABEL as DNS1123_LABEL  # shared with namespaces
from mesh.config.model import StringMatch, WorkloadSelector
from mesh.config.resource import Resource

MAX_REGEX_LENGTH = 1024
HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$")
WILDCARD_HOST = re.compile(
    r"^(\*|(\*\.)?[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*)$"
)


class Findings:
    """Collects issues for one resource with its file, line and name filled in."""

    def __init__(self, resource: Resource, out: list[Issue]) -> None:
        self.resource = resource
        self.out = out

    def error(self, path: str, message: str, code: str = codes.SCHEMA_VALIDATION_ERROR) -> None:
        self.out.append(self.resource.issue("Error", code, path, message))

    def warn(self, path: str, message: str, code: str = codes.SCHEMA_WARNING) -> None:
        self.out.append(self.resource.issue("Warning", code, path, message))

    def info(self, path: str, message: str, code: str = codes.NOT_SUPPORTED) -> None:
        self.out.append(self.resource.issue("Info", code, path, message))


def check_regex(found: Findings, path: str, pattern: str) -> bool:
    if not pattern:
        found.error(path, "regex must not be empty")
        return False
    if len(pattern) > MAX_REGEX_LENGTH:
        found.error(path, f"regex is {len(pattern)} characters; the limit is {MAX_REGEX_LENGTH}")
        return False
    try:
        options = re2.Options()
        options.log_errors = False
        re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        hint = (
            ' (to test for presence, use {} instead of regex "*")'
            if pattern in ("*", ".*?*")
            else ""
        )
        found.error(path, f"invalid regex {pattern!r}: {reason}{hint}")
        return False
    return True


def check_string_match(
    found: Findings, path: str, match: StringMatch, allow_empty_prefix: bool = False
) -> None:
    if match.kind == "prefix" and not match.value and not allow_empty_prefix:
        found.error(
            f"{path}.prefix",
            "empty prefix is not allowed here; to match any value use {} (presence)",
        )
    elif match.kind == "regex":
        check_regex(found, f"{path}.regex", match.value)


def check_duration(found: Findings, path: str, seconds: float | None) -> None:
    if seconds is not None and seconds < 0.001:
        found.error(path, f"duration must be at least 1ms (got {seconds * 1000:g}ms)")


def check_percent(found: Findings, path: str, value: float) -> None:
    if value < 0 or value > 100:
        found.error(path, f"percentage must be between 0 and 100 (it is {value:g})")
    elif 0 < value < 0.0001:
        found.error(path, f"percentage must be 0 or at least 0.0001 (it is {value:g})")


def check_deprecated_percent(found: Findings, path: str, value: int, replacement: str) -> None:
    """The integer percent fields Istio deprecated in favour of ``{value: N}`` percentages."""
    field_name = path.rsplit(".", 1)[-1]
    found.warn(
        path,
        f"{field_name} is deprecated: use {replacement}: {{value: N}}",
        codes.DEPRECATED,
    )
    if not 0 <= value <= 100:
        found.error(path, f"must be between 0 and 100 (it is {value})")


def check_header_name(found: Findings, path: str, name: str) -> None:
    if not name:
        found.error(path, "header name must not be empty")
    elif name.startswith(":"):
        found.error(
            path,
            f"pseudo-header {name!r} cannot be matched as a header: use the uri, method, "
            "scheme or authority field",
        )
    elif not HEADER_NAME.match(name):
        found.error(path, f"{name!r} is not a valid header name")


def check_workload_selector(found: Findings, path: str, selector: WorkloadSelector | None) -> None:
    """Istio's ``validateWorkloadSelector`` (PeerAuthentication, AuthorizationPolicy)."""
    if selector is None:
        return
    for key, value in selector.match_labels.items():
        if key == "":
            found.error(
                f"{path}.matchLabels", f'empty key is not supported in selector: "={value}"'
            )
        if "*" in key or "*" in (value or ""):
            found.error(
                f"{path}.matchLabels.{key}",
                f'wildcard is not supported in selector: "{key}={value}"',
            )
    if not selector.match_labels:
        found.warn(path, "workload selector specified without labels")
