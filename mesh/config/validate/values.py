"""Checks of values that several kinds share, ported from Istio's ``pkg/config/validation``
(``validation.go``, ``agent/validation.go``, ``header_value_validator.go``, ``pkg/config/labels``):
regexes and string matches, durations, percentages, ports, header names and values (Envoy's
``%VAR%`` syntax), host names (FQDN, wildcard, ``namespace/host``), labels, ``exportTo``,
workload selectors, and ``Findings``, the collector every check writes to.

A rule about a field *type* (a ``StringMatch``, a ``Duration``, a ``Percent``, a header
name) lives here; a rule about a field of one kind lives in that kind's module.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping

import re2

from mesh.config import issues as codes
from mesh.config.issues import Issue
from mesh.config.model import StringMatch, WorkloadSelector
from mesh.config.resource import Resource

MAX_REGEX_LENGTH = 1024
DNS1123_LABEL_MAX = 63
_LABEL = "[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?"
DNS1123_LABEL = re.compile(f"^{_LABEL}$")
WILDCARD_LABEL = re.compile(rf"^(\*|(\*|\*-)?{_LABEL})$")
_QUALIFIED_NAME = "(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
LABEL_KEY = re.compile(rf"^({_LABEL}(?:\.{_LABEL})*/)?({_QUALIFIED_NAME})$")
LABEL_VALUE = re.compile(rf"^({_QUALIFIED_NAME})?$")
HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~A-Za-z0-9]+$")
HEADER_VALUE = re.compile("^[^\u0000-\u0008\u000a-\u001f\u007f]*$")
PSEUDO_HEADERS = frozenset({":method", ":scheme", ":authority", ":path", ":status"})
# Istio's jwt.ToRoutingClaim: header keys of this form match JWT claims (gateways only).
JWT_CLAIM_PREFIX = "@request.auth.claims"
ONE_MS = 0.001


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

    def lab(self, path: str, message: str) -> None:
        """A note on where the lab deliberately differs from Istio (README, Lab decisions)."""
        self.out.append(self.resource.issue("Info", codes.LAB_DECISION, path, message))


# ---------------------------------------------------------------- regexes and string matches


def check_regex(found: Findings, path: str, pattern: str) -> bool:
    """Istio's validateStringRegexp: ≤ 1024 characters and RE2 syntax."""
    if len(pattern) > MAX_REGEX_LENGTH:
        found.error(path, f"regex is too large ({len(pattern)} characters; the limit is 1024)")
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
        found.error(
            path,
            f"invalid regex {pattern!r}: {reason}{hint}; Istio uses RE2 syntax "
            "(https://github.com/google/re2/wiki/Syntax)",
        )
        return False
    return True


def check_string_match(
    found: Findings, path: str, match: StringMatch | None, allow_empty_prefix: bool = False
) -> None:
    """Istio's validateStringMatch (``allow_empty_prefix``: validateStringMatchRegexp, the
    ``uri`` rule: Envoy accepts an empty path prefix)."""
    if match is None:
        return
    if match.kind == "prefix" and not match.value and not allow_empty_prefix:
        found.error(
            f"{path}.prefix",
            "prefix string match should not be empty; to match any value use {} (presence)",
        )
    elif match.kind == "regex":
        if not match.value:
            found.error(f"{path}.regex", "regex string match should not be empty")
        else:
            check_regex(found, f"{path}.regex", match.value)


# ---------------------------------------------------------------- numbers and durations


def check_duration(found: Findings, path: str, seconds: float | None) -> None:
    """Istio's ValidateDuration: at least 1ms, in whole milliseconds."""
    if seconds is None:
        return
    nanos = round(seconds * 1e9)
    if nanos < 1_000_000:
        found.error(path, f"duration must be at least 1ms (it is {_duration_text(nanos)})")
    elif nanos % 1_000_000:
        found.error(
            path,
            f"only durations to ms precision are supported (it is {_duration_text(nanos)})",
        )


def _duration_text(nanos: int) -> str:
    if nanos % 1_000_000 == 0:
        return f"{nanos // 1_000_000}ms"
    return f"{nanos / 1e9:.9f}".rstrip("0") + "s"


def check_percentage(found: Findings, path: str, value: float) -> None:
    """Istio's validatePercentage: 0, or within [0.0001, 100]."""
    if value < 0 or value > 100 or 0 < value < 0.0001:
        found.error(path, f"percentage {value:g} is neither 0.0, nor in range [0.0001, 100.0]")


def check_int_percent(found: Findings, path: str, value: int | None) -> None:
    """Istio's ValidatePercent (integer percent fields): 0..100."""
    if value is not None and not 0 <= value <= 100:
        found.error(path, f"percentage {value} is not in range 0..100")


def check_port(found: Findings, path: str, port: int | None) -> None:
    """Istio's ValidatePort: 1..65535 (a missing port is 0)."""
    number = port or 0
    if not 1 <= number <= 65535:
        found.error(path, f"port number {number} must be in the range 1..65535")


# ---------------------------------------------------------------- headers


def check_match_header_name(found: Findings, path: str, name: str) -> None:
    """Istio's ValidateHTTPHeaderNameOrJwtClaimRoute: a header name, a pseudo-header or a
    JWT claim (``@request.auth.claims.x``)."""
    if not name:
        found.error(path, "header name cannot be empty")
    elif name in PSEUDO_HEADERS or name.startswith(f"{JWT_CLAIM_PREFIX}."):
        return
    elif not HEADER_NAME.match(name):
        found.error(path, f"header name {name!r} is not a valid header name")


def check_cors_header_name(found: Findings, path: str, name: str) -> None:
    if not name:
        found.error(path, "header name cannot be empty")
    elif name != "*" and not HEADER_NAME.match(name):
        found.error(path, f"header name {name!r} is not a valid header name")


def check_header_operation_name(found: Findings, path: str, name: str, authority: bool) -> None:
    """Istio's ValidateHTTPHeaderWithAuthorityOperationName (``authority``: request set/add,
    where ``host``/``:authority`` rewrite the authority) or ValidateHTTPHeaderOperationName."""
    if not name:
        found.error(path, "header name cannot be empty")
        return
    is_authority = name.lower() in ("host", ":authority")
    if authority and is_authority:
        return
    if name.lower() == "host":
        found.error(path, f"invalid header {name!r}: cannot set Host header")
    elif name.startswith(":"):
        found.error(path, f'invalid header {name!r}: header cannot have ":" prefix')


def header_value_problem(value: str) -> str | None:
    """Istio's ValidateHTTPHeaderValue: no control characters, and Envoy's ``%VAR%`` /
    ``%VAR(args)%`` syntax well formed (``%%`` is a literal %); None when valid."""
    if not HEADER_VALUE.match(value):
        return "header value contains control characters"
    state = "literal"
    pos = 0
    while pos < len(value):
        ch = value[pos]
        more = pos + 1 < len(value)
        if state == "literal":
            if ch == "%":
                if not more:
                    return "un-escaped % (write %% for a literal %)"
                if value[pos + 1] == "%":
                    pos += 1
                else:
                    state = "name"
        elif state == "name":
            if ch == "%":
                state = "literal"
            elif ch == "(":
                state = "expect-array"
        elif state == "expect-array":
            if ch == "[":
                state = "expect-string"
            elif ch != " ":
                state = "string"
        elif state == "array-next":
            if ch == ",":
                state = "expect-string"
            elif ch == "]":
                state = "args-end"
            elif ch != " ":
                return "expecting ',', ']' or whitespace in a %VAR([...])% argument list"
        elif state == "expect-string":
            if ch == '"':
                state = "string"
            elif ch != " ":
                return "expecting '\"' in a %VAR([...])% argument list"
        elif state == "string":
            if ch == "\\":
                if not more:
                    return "un-terminated backslash in a %VAR(...)% argument"
                pos += 1
            elif ch == ")":
                state = "variable-end"
            elif ch == '"':
                state = "array-next"
        elif state == "args-end":
            if ch == ")":
                state = "variable-end"
            elif ch != " ":
                return "expecting ')' after a %VAR([...])% argument list"
        elif state == "variable-end":
            if ch == "%":
                state = "literal"
            elif ch != " ":
                return "expecting '%' to close a %VAR(...)% expression"
        pos += 1
    if state != "literal":
        return f"un-terminated variable expression {value!r} (write %% for a literal %)"
    return None


def check_header_value(found: Findings, path: str, value: str) -> None:
    problem = header_value_problem(value)
    if problem is not None:
        found.error(path, f"header value configuration: {problem}")


# ---------------------------------------------------------------- names and hosts


def is_dns1123_label(value: str) -> bool:
    return len(value) <= DNS1123_LABEL_MAX and DNS1123_LABEL.match(value) is not None


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def is_ip_subnet(value: str) -> bool:
    """Istio's ValidateIPSubnet: an address, or a CIDR block."""
    if value.count("/") == 1:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            return False
        address, bits = value.split("/")
        return bits.isdigit() and is_ip(address)
    return is_ip(value)


def _domain_preconditions(name: str) -> str | None:
    if len(name) > 255:
        return f"domain name {name!r} too long (max 255)"
    if not name:
        return "empty domain name not allowed"
    return None


def _dns1123_labels(domain: str) -> str | None:
    parts = domain.split(".")
    if parts[-1].isdigit():
        return (
            f"domain name {domain!r} invalid (top level domain {parts[-1]!r} cannot be all-numeric)"
        )
    for i, label in enumerate(parts):
        if i == len(parts) - 1 and label == "":
            return None  # "istio.io." is an unambiguous name
        if not is_dns1123_label(label):
            return f"domain name {domain!r} invalid (label {label!r} invalid)"
    return None


def fqdn_problem(name: str) -> str | None:
    """Istio's ValidateFQDN; None when valid."""
    return _domain_preconditions(name) or _dns1123_labels(name)


def wildcard_domain_problem(name: str) -> str | None:
    """Istio's ValidateWildcardDomain: an FQDN whose first label may be a wildcard
    (``*``, ``*.x``, ``*foo``, ``*-foo``); None when valid."""
    problem = _domain_preconditions(name)
    if problem:
        return problem
    first, _, rest = name.partition(".")
    if not (len(first) <= DNS1123_LABEL_MAX and WILDCARD_LABEL.match(first)):
        return f"domain name {name!r} invalid (label {first!r} invalid)"
    return _dns1123_labels(rest) if rest else None


def partial_wildcard_problem(host: str) -> str | None:
    """Istio's ValidatePartialWildCard: a wildcard only as the whole first label."""
    if "*" in host and host != "*" and not host.startswith("*."):
        return f"partial wildcard {host!r} not allowed"
    return None


def check_labels(found: Findings, path: str, labels: Mapping[str, str]) -> None:
    """Istio's labels.Instance.Validate: Kubernetes label keys and values."""
    for key, value in labels.items():
        match = LABEL_KEY.match(key)
        if match is None:
            found.error(path, f"invalid tag key: {key!r}")
        elif match.group(1) and len(match.group(1)) - 1 > 253:
            found.error(path, f"invalid tag key: {key!r} (DNS prefix is too long)")
        elif len(match.group(2)) > DNS1123_LABEL_MAX:
            found.error(path, f"invalid tag key: {key!r} (name is too long)")
        if not LABEL_VALUE.match(value):
            found.error(path, f"invalid tag value: {value!r}")


def check_export_to(
    found: Findings,
    path: str,
    namespace: str,
    export_to: Iterable[str],
    *,
    service_entry: bool = False,
    with_selector: bool = False,
) -> None:
    """Istio's validateExportTo: ``.``, ``*``, namespaces (and ``~`` for ServiceEntry)."""
    entries = list(export_to)
    if not entries:
        return
    seen: set[str] = set()
    for entry in entries:
        key = namespace if entry == "." else entry
        if key in seen:
            if key != entry:
                found.error(
                    path, f"duplicate entries in exportTo: . and current namespace {namespace}"
                )
            else:
                found.error(path, f"duplicate entries in exportTo for entry {entry}")
            continue
        if service_entry and entry == "~":
            seen.add(key)
        elif key == "*" or is_dns1123_label(key):
            seen.add(key)
        else:
            found.error(
                path, f"only . or * or a valid DNS-1123 label is allowed in exportTo: {entry!r}"
            )
    if with_selector and seen:
        if namespace in seen:
            if len(seen) > 1:
                found.error(
                    path,
                    "destination rule with workload selector cannot have multiple entries in exportTo",
                )
        else:
            found.error(
                path,
                "destination rule with workload selector cannot have exportTo beyond current namespace",
            )
    if "*" in seen and len(entries) > 1:
        found.error(
            path, "cannot have both public (*) and non-public exportTo values for a resource"
        )
    if "~" in seen and len(entries) > 1:
        found.error(path, "cannot export service entry to no one (~) and someone")


def check_workload_selector(found: Findings, path: str, selector: WorkloadSelector | None) -> None:
    """Istio's ``validateWorkloadSelector`` (DestinationRule, PeerAuthentication,
    AuthorizationPolicy)."""
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


def check_gateway_name(found: Findings, path: str, name: str) -> None:
    """Istio's validateGatewayNames: ``namespace/name``, or a name (FQDN rules)."""
    namespace, sep, short = name.partition("/")
    if not sep:
        if "." in name:
            parts = name.split(".", 1)  # Istio: strings.SplitN(name, ".", 2)
            found.warn(
                path,
                f"using legacy gatewayName format {name!r}; prefer the <namespace>/<name> "
                f"format: {parts[1] + '/' + parts[0]!r}",
            )
        problem = fqdn_problem(name)
        if problem:
            found.error(path, problem)
        return
    if not namespace or not short:
        found.error(path, "config namespace and gateway name cannot be empty")
    if not is_dns1123_label(namespace):
        found.error(path, f"invalid value for namespace: {namespace!r}")
    if not is_dns1123_label(short):
        found.error(path, f"invalid value for gateway name: {short!r}")
