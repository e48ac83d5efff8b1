"""AuthorizationPolicy: Istio's validation, one finding per problem with its field path.

Ported from istio/istio ``pkg/config/validation/validation.go`` (``ValidateAuthorizationPolicy``,
``validatePolicyTargetReference``, ``checkDryRunAnnotation``) and
``pkg/config/security/security.go`` (``ValidateAttribute``, ``ValidateIPs``, ``ValidatePorts``,
``CheckEmptyValues``, ``CheckServiceAccount``, ``CheckTrustDomainValues``,
``CheckValidPathTemplate``). Istio's errors are ``IST0106`` errors and its warnings ``IST0133``
warnings; the lab refuses what it cannot run with ``MSH0002`` errors (``action: CUSTOM``: no
extension provider; ``experimental.envoy.filters.*`` keys) and notes ``targetRef(s)`` (for
gateways and waypoints, which the lab does not run).

Primitives: ``check_authorization_policy`` (the kind's entry), ``check_condition`` (one
``when``), ``check_dry_run_annotation`` (every kind: only AuthorizationPolicy ALLOW/DENY may
carry ``istio.io/dry-run``, with a boolean).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mesh.config import issues as codes
from mesh.config.authz_values import check_path_template, parse_ip_block
from mesh.config.issues import Issue
from mesh.config.model import (
    AuthorizationPolicy,
    Condition,
    Operation,
    PolicyTargetReference,
    Source,
)
from mesh.config.resource import Resource
from mesh.config.validate.values import Findings, check_workload_selector

DRY_RUN_ANNOTATION = "istio.io/dry-run"
GO_BOOLS = {"1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"}
# (group, kind) a policy's targetRef may name (Istio's allowedTargetRefs; "" is core).
ALLOWED_TARGET_REFS = (
    ("core", "Service"),
    ("networking.istio.io", "ServiceEntry"),
    ("gateway.networking.k8s.io", "Gateway"),
    ("gateway.networking.k8s.io", "GatewayClass"),
)


def check_dry_run_annotation(resource: Resource, out: list[Issue]) -> None:
    """``istio.io/dry-run`` is for AuthorizationPolicy ALLOW/DENY, with a boolean value."""
    found = Findings(resource, out)
    metadata = resource.raw.get("metadata")
    notes = metadata.get("annotations") if isinstance(metadata, dict) else None
    if not isinstance(notes, dict) or DRY_RUN_ANNOTATION not in notes:
        return
    path = f"metadata.annotations.{DRY_RUN_ANNOTATION}"
    value = notes[DRY_RUN_ANNOTATION]
    if resource.kind != "AuthorizationPolicy":
        found.error(
            path,
            f"{resource.kind} does not support the annotation {DRY_RUN_ANNOTATION}: remove it "
            "(only AuthorizationPolicy can be dry-run)",
        )
        return
    action = resource.spec.action or "ALLOW"
    if action not in ("ALLOW", "DENY"):
        found.error(
            path,
            f"the annotation {DRY_RUN_ANNOTATION} only supports action ALLOW/DENY, not {action}",
        )
    elif not isinstance(value, str) or value not in GO_BOOLS:
        shown = f'"{value}"' if isinstance(value, str) else f'{value!r} (quote it: "true")'
        found.error(path, f"annotation {DRY_RUN_ANNOTATION} must be true or false, not {shown}")


def check_target_ref(found: Findings, path: str, ref: PolicyTargetReference) -> None:
    if not ref.name:
        found.error(f"{path}.name", "targetRef name must be set")
    if ref.namespace:
        found.error(
            f"{path}.namespace",
            "targetRef namespace must not be set; cross namespace referencing is not supported",
        )
    group = ref.group or "core"
    if (group, ref.kind) not in ALLOWED_TARGET_REFS:
        allowed = ", ".join(f"{g}/{k}" for g, k in ALLOWED_TARGET_REFS)
        found.error(path, f"targetRef must be to one of {allowed} but was {ref.group}/{ref.kind}")


def _empty_values(found: Findings, path: str, name: str, values: Sequence[str]) -> bool:
    for i, value in enumerate(values):
        if value == "":
            found.error(f"{path}.{name}[{i}]", f"empty value not allowed, found in {name}")
            return True
    return False


def _check_ips(found: Findings, path: str, name: str, values: Sequence[str]) -> None:
    for i, value in enumerate(values):
        if value == "":
            continue  # reported as an empty value
        try:
            parse_ip_block(value)
        except ValueError as exc:
            found.error(f"{path}.{name}[{i}]", str(exc))


def _check_ports(found: Findings, path: str, name: str, values: Sequence[str]) -> None:
    for i, value in enumerate(values):
        if value == "":
            continue
        if not value.isdigit() or int(value) > 65535:
            found.error(f"{path}.{name}[{i}]", f"bad port ({value}): must be 0..65535")


def _service_account_problem(value: str, name: str) -> str | None:
    if value == "":
        return f"empty value not allowed, found in {name}"
    if "*" in value:
        return f"wildcard not allowed, found in {name}"
    if value.count("/") > 1:
        return f"expected format 'serviceAccount' or 'namespace/serviceAccount', found {value!r}"
    if len(value) > 320:
        return f"value cannot exceed 320 characters, found in {name}"
    namespace, slash, account = value.partition("/")
    if slash and not namespace:
        return f"expected 'namespace/serviceAccount', found empty namespace {value!r}"
    if slash and not account:
        return f"expected 'namespace/serviceAccount', found empty serviceAccount {value!r}"
    return None


def _check_service_accounts(found: Findings, path: str, name: str, values: Sequence[str]) -> None:
    """Istio's ``CheckServiceAccount``: at most 16, no wildcard, ``sa`` or ``ns/sa``."""
    if len(values) > 16:
        found.error(f"{path}.{name}", "may not have more than 16 values")
        return
    for i, value in enumerate(values):
        problem = _service_account_problem(value, name)
        if problem is not None:
            found.error(f"{path}.{name}[{i}]", problem)
            return


def _check_wildcards(found: Findings, path: str, name: str, values: Sequence[str]) -> None:
    """Trust domains: one ``*`` at most, only at the start or end, and no ``/``."""
    for i, value in enumerate(values):
        where = f"{path}.{name}[{i}]"
        if value == "":
            found.error(where, f"empty value not allowed, found in {name}")
        elif value.count("*") > 1:
            found.error(where, f"at most one wildcard is allowed, found in {name}: {value!r}")
        elif "*" in value and value != "*" and not (value.startswith("*") or value.endswith("*")):
            found.error(
                where, f"wildcard is only allowed at the start or end, found in {name}: {value!r}"
            )
        elif "/" in value:
            found.error(where, f"trust domain must not contain '/', found in {name}: {value!r}")


def _check_path_templates(found: Findings, path: str, name: str, values: Sequence[str]) -> None:
    for i, value in enumerate(values):
        try:
            check_path_template(value)
        except ValueError as exc:
            found.error(f"{path}.{name}[{i}]", f"{exc}, found in {name}")


# ---------------------------------------------------------------- AuthorizationPolicy

_CUSTOM_UNSUPPORTED_SOURCE = (
    "namespaces",
    "not_namespaces",
    "service_accounts",
    "not_service_accounts",
    "trust_domains",
    "not_trust_domains",
    "principals",
    "not_principals",
    "request_principals",
    "not_request_principals",
)
_CUSTOM_UNSUPPORTED_KEYS = (
    "source.namespace",
    "source.serviceAccount",
    "source.trustDomain",
    "source.principal",
)
# Source fields that a TCP connection has (Istio's tcpRulesInFrom).
_TCP_SOURCE_FIELDS = (
    "principals",
    "not_principals",
    "ip_blocks",
    "not_ip_blocks",
    "namespaces",
    "not_namespaces",
    "remote_ip_blocks",
    "not_remote_ip_blocks",
    "service_accounts",
    "not_service_accounts",
)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def check_authorization_policy(resource: Resource, out: list[Issue]) -> None:
    spec: AuthorizationPolicy = resource.spec
    found = Findings(resource, out)
    action = spec.action or "ALLOW"
    set_count = sum(
        (spec.selector is not None, spec.target_ref is not None, bool(spec.target_refs))
    )
    if set_count > 1:
        found.error("selector", "only one of targetRefs or workloadSelector can be set")
    check_workload_selector(found, "selector", spec.selector)
    if spec.target_ref is not None:
        check_target_ref(found, "targetRef", spec.target_ref)
    for i, ref in enumerate(spec.target_refs):
        check_target_ref(found, f"targetRefs[{i}]", ref)
    if spec.target_ref is not None or spec.target_refs:
        found.info(
            "targetRefs" if spec.target_refs else "targetRef",
            "a policy with targetRef(s) applies to Gateway API gateways and waypoints, which the "
            "lab does not run: sidecars ignore it",
        )
    rules = spec.rules or ()
    if action == "CUSTOM":
        found.error(
            "action",
            "CUSTOM (external authorization through an extension provider) is not supported by "
            "the lab: it has no ext_authz service. Use ALLOW or DENY rules",
            codes.NOT_SUPPORTED,
        )
        _check_custom(found, spec)
    if spec.provider is not None and action != "CUSTOM":
        found.error("provider", f"`provider` must not be with non CUSTOM action, found {action}")
    if action == "DENY" and not rules:
        found.error(
            "rules",
            "DENY action without `rules` is meaningless as it will never be triggered, add an "
            "empty rule `{}` if you want it be triggered for every request",
        )
    for i, rule in enumerate(rules):
        path = f"rules[{i}]"
        if rule is None:
            found.error(path, f"`rule` must not be nil, found at rule {i}")
            continue
        sources = _entries(found, path, "from", "source", rule.from_, i)
        operations = _entries(found, path, "to", "operation", rule.to, i)
        # Istio's tcpRulesInFrom / tcpRulesInTo: a source or operation naming a TCP attribute.
        tcp_in_from = any([_check_source(found, p, source, i) for p, source in sources])
        tcp_in_to = any([_check_operation(found, p, operation, i) for p, operation in operations])
        for k, condition in enumerate(rule.when):
            if condition is not None:
                check_condition(found, f"{path}.when[{k}]", condition)
        if action == "DENY" and (
            (sources and not operations and not tcp_in_from) or (operations and not tcp_in_to)
        ):
            found.warn(
                path,
                "configured AuthorizationPolicy will deny all traffic to TCP ports under its "
                "scope due to the use of only HTTP attributes in a DENY rule; it is recommended "
                "to explicitly specify the port (the lab serves HTTP only: no effect here)",
            )


def _entries(
    found: Findings, path: str, field: str, inner: str, items: Sequence[Any] | None, rule: int
) -> list[tuple[str, Any]]:
    """Istio's nil checks of ``from``/``to``: not empty when written, no null entry, each
    entry's ``source``/``operation`` set. Returns (path, value) of the entries to check."""
    if items is not None and not items:
        found.error(f"{path}.{field}", f"`{field}` must not be empty, found at rule {rule}")
    present = []
    for j, item in enumerate(items or ()):
        where = f"{path}.{field}[{j}]"
        value = getattr(item, inner) if item is not None else None
        if item is None:
            found.error(where, f"`{field}` must not be nil, found at rule {rule}")
        elif value is None:
            found.error(
                f"{where}.{inner}", f"`{field}.{inner}` must not be nil, found at rule {rule}"
            )
        else:
            present.append((f"{where}.{inner}", value))
    return present


def _check_custom(found: Findings, spec: AuthorizationPolicy) -> None:
    if spec.rules is None:
        found.error(
            "rules",
            "CUSTOM action without `rules` is meaningless as it will never be triggered, add an "
            "empty rule `{}` if you want it be triggered for every request",
        )
        return
    if spec.provider is None or not spec.provider.name:
        found.error("provider.name", "`provider.name` must not be empty")
    for i, rule in enumerate(spec.rules):
        if rule is None:
            continue
        for j, item in enumerate(rule.from_ or ()):
            if item is None or item.source is None:
                continue
            for name in _CUSTOM_UNSUPPORTED_SOURCE:
                if getattr(item.source, name):
                    found.error(
                        f"rules[{i}].from[{j}].source.{_camel(name)}",
                        f"From.{_camel(name)[0].upper()}{_camel(name)[1:]} is currently not "
                        "supported with CUSTOM action",
                    )
        for k, condition in enumerate(rule.when):
            where = f"rules[{i}].when[{k}]"
            if condition is None:
                found.error(where, "when field cannot be nil")
            elif condition.key in _CUSTOM_UNSUPPORTED_KEYS or (condition.key or "").startswith(
                "request.auth."
            ):
                found.error(
                    f"{where}.key", f"{condition.key} is currently not supported with CUSTOM action"
                )


def _check_source(found: Findings, path: str, source: Source, rule: int) -> bool:
    """Istio's source checks; returns whether the source names a TCP attribute."""
    s = source
    if (s.principals or s.not_principals or s.namespaces or s.not_namespaces) and (
        s.service_accounts or s.not_service_accounts
    ):
        found.error(
            path, f"cannot set serviceAccounts with namespaces or principals, found at rule {rule}"
        )
    if source == Source():
        found.error(path, f"`from.source` must not be empty, found at rule {rule}")
    for name in ("ip_blocks", "not_ip_blocks", "remote_ip_blocks", "not_remote_ip_blocks"):
        _check_ips(found, path, _camel(name), getattr(s, name))
    for name in (
        "principals",
        "request_principals",
        "namespaces",
        "ip_blocks",
        "remote_ip_blocks",
        "not_principals",
        "not_request_principals",
        "not_namespaces",
        "not_ip_blocks",
        "not_remote_ip_blocks",
    ):
        _empty_values(found, path, _camel(name), getattr(s, name))
    _check_service_accounts(found, path, "serviceAccounts", s.service_accounts)
    _check_service_accounts(found, path, "notServiceAccounts", s.not_service_accounts)
    _check_wildcards(found, path, "trustDomains", s.trust_domains)
    _check_wildcards(found, path, "notTrustDomains", s.not_trust_domains)
    return any(getattr(s, name) for name in _TCP_SOURCE_FIELDS)


def _check_operation(found: Findings, path: str, operation: Operation, rule: int) -> bool:
    """Istio's operation checks; returns whether it names ports (a TCP attribute)."""
    o = operation
    if operation == Operation():
        found.error(path, f"`to.operation` must not be empty, found at rule {rule}")
    _check_ports(found, path, "ports", o.ports)
    _check_ports(found, path, "notPorts", o.not_ports)
    for name in (
        "ports",
        "methods",
        "paths",
        "hosts",
        "not_ports",
        "not_methods",
        "not_paths",
        "not_hosts",
    ):
        _empty_values(found, path, _camel(name), getattr(o, name))
    _check_path_templates(found, path, "paths", [p for p in o.paths if p])
    _check_path_templates(found, path, "notPaths", [p for p in o.not_paths if p])
    return bool(o.ports or o.not_ports)


def _map_key_ok(key: str) -> bool:
    """Istio's ``validateMapKey``: ``a[b]`` with a non-empty ``b``."""
    opening = key.find("[")
    return key.endswith("]") and 0 < opening < len(key) - 2


_PLAIN_KEYS = (
    "source.namespace",
    "source.principal",
    "request.auth.principal",
    "request.auth.audiences",
    "request.auth.presenter",
    "connection.sni",
)


def _attribute_problem(key: str, values: Sequence[str]) -> str | None:
    """Istio's ``ValidateAttribute``: None when fine, else the reason."""
    if any(v == "" for v in values):
        return f"empty value not allowed, found in {key}"
    if key.startswith("request.headers") or key.startswith("request.auth.claims"):
        return None if _map_key_ok(key) else f"bad key ({key}): should have format a[b]"
    if key in ("source.ip", "remote.ip", "destination.ip"):
        for value in values:
            try:
                parse_ip_block(value)
            except ValueError as exc:
                return str(exc)
        return None
    if key == "destination.port":
        bad = [v for v in values if not v.isdigit() or int(v) > 65535]
        return f"bad port ({bad[0]})" if bad else None
    if key == "source.serviceAccount":
        for value in values:
            problem = _service_account_problem(value, key)
            if problem is not None:
                return problem
        return None
    if key == "source.trustDomain":
        for value in values:
            if value.count("*") > 1 or (
                "*" in value and value != "*" and not (value.startswith("*") or value.endswith("*"))
            ):
                return f"bad wildcard in {value!r}: one '*', at the start or end"
        return None
    if key in _PLAIN_KEYS:
        return None
    if key.startswith("experimental.envoy.filters."):
        return None if _map_key_ok(key) else f"bad key ({key}): should have format a[b]"
    if key == "destination.namespace":
        return f"attribute {key} is replaced by the metadata.namespace"
    if key.startswith("destination.labels"):
        return f"attribute {key} is replaced by the workload selector"
    if key in ("destination.name", "destination.user"):
        return f"deprecated attribute {key}: only supported in v1alpha1"
    return f"unknown attribute: {key}"


def check_condition(found: Findings, path: str, condition: Condition) -> None:
    key = condition.key or ""
    if not key:
        found.error(f"{path}.key", "`key` must not be empty")
        return
    if not condition.values and not condition.not_values:
        found.error(path, f"at least one of `values` or `notValues` must be set for key {key}")
        return
    for field_name, values in (("values", condition.values), ("notValues", condition.not_values)):
        problem = _attribute_problem(key, values)
        if problem is not None:
            singular = "value" if field_name == "values" else "notValue"
            found.error(f"{path}.{field_name}", f"invalid `{singular}` for `key` {key}: {problem}")
            return
    if key.startswith("experimental.envoy.filters."):
        found.error(
            f"{path}.key",
            f"{key}: Envoy filter metadata is not available in the lab's sidecar",
            codes.NOT_SUPPORTED,
        )
