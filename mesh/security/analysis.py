"""Cross-resource checks of the security kinds, as ``istioctl analyze`` and Kiali report them.

``analyze_security(resources, topology)`` returns, for the ``Topology`` the caller passes in
(it runs beside ``mesh.config.validate.analyze``, which validates each resource):

- ``IST0127`` a PeerAuthentication or AuthorizationPolicy selector that matches no workload
  with a sidecar (Istio's ``NoMatchingWorkloadsFound``), and a selector in the root namespace
  on a PeerAuthentication, which Istio ignores;
- ``IST0101`` a ``namespaces``/``notNamespaces`` entry naming no namespace of the topology;
- ``MSH0006`` mTLS conflicts (Kiali's validations): a DestinationRule whose ``tls`` sends
  plaintext to workloads that are STRICT (connections reset), or ``ISTIO_MUTUAL``/``SIMPLE``/
  ``MUTUAL`` to workloads whose PeerAuthentication is DISABLE or that have no sidecar (TLS
  handshake fails, 503 UF); peer identities (``principals``, ``namespaces``,
  ``serviceAccounts``, ``trustDomains``, ``source.*`` conditions) used in a policy for
  workloads whose mTLS is DISABLE (no identity ever arrives: they never match);
- ``MSH0007`` a principal or service account naming no ServiceAccount of the topology (Kiali's
  "Service Account not found"), when the topology lists its service accounts;
- notes: JWT fields (``requestPrincipals``, ``request.auth.*``) need RequestAuthentication,
  which the lab has not; ``remoteIpBlocks`` is the source address (no trusted proxies); two
  PeerAuthentications at one scope (only the first applies).

These are warnings: the config is valid Istio and may be applied on purpose to show the
failure. A DestinationRule's ``tls`` is compared with each backing pod's PeerAuthentication mode
for the pod as a whole (not port by port).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from mesh.config import issues as codes
from mesh.config.issues import Issue
from mesh.config.model import (
    AuthorizationPolicy,
    ClientTLSSettings,
    DestinationRule,
    PeerAuthentication,
    Source,
    TrafficPolicy,
)
from mesh.config.resource import Resource
from mesh.security.identity import IdentityError, parse_principal
from mesh.security.mtls import MtlsMode, PeerAuthentications
from mesh.security.patterns import string_matcher
from mesh.security.workload import has_labels, has_proxy, selects
from mesh.topology import ROOT_NAMESPACE, Pod, Topology

_IDENTITY_FIELDS: tuple[str, ...] = ("principals", "not_principals", "namespaces", "not_namespaces")
_IDENTITY_FIELDS += ("service_accounts", "not_service_accounts")
_IDENTITY_FIELDS += ("trust_domains", "not_trust_domains")
_IDENTITY_KEYS = (
    "source.principal",
    "source.namespace",
    "source.serviceAccount",
    "source.trustDomain",
)
CLUSTER_SUFFIXES = (".svc.cluster.local", ".svc")


def _selector_text(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def analyze_security(
    resources: Sequence[Resource], topology: Topology, root_namespace: str = ROOT_NAMESPACE
) -> list[Issue]:
    """Every security finding across these (already validated) resources."""
    out: list[Issue] = []
    workloads = list(topology.pods)
    peer_authns = PeerAuthentications(resources, root_namespace)
    in_mesh = [w for w in workloads if has_proxy(w)]
    namespaces = set(topology.namespaces) | {w.namespace for w in workloads} | {root_namespace}
    accounts = set(topology.service_accounts)
    for resource in resources:
        if resource.kind == "PeerAuthentication":
            _check_peer_authentication(resource, in_mesh, root_namespace, out)
        elif resource.kind == "AuthorizationPolicy":
            _check_policy_selector(resource, in_mesh, root_namespace, out)
            _check_policy_sources(
                resource, workloads, namespaces, accounts, peer_authns, root_namespace, out
            )
        elif resource.kind == "DestinationRule":
            _check_destination_rule_tls(resource, workloads, peer_authns, out)
    _check_duplicate_scopes(resources, in_mesh, root_namespace, out)
    return out


# ---------------------------------------------------------------- selectors


def _check_peer_authentication(
    resource: Resource, in_mesh: Sequence[Pod], root: str, out: list[Issue]
) -> None:
    spec: PeerAuthentication = resource.spec
    if not has_labels(spec.selector):
        return
    assert spec.selector is not None
    labels = dict(spec.selector.match_labels)
    if resource.namespace == root:
        out.append(
            resource.issue(
                "Warning",
                codes.SCHEMA_WARNING,
                "selector",
                f"a PeerAuthentication with a workload selector in the root namespace {root} is "
                "ignored by Istio: put it in the workloads' namespace",
            )
        )
        return
    if not any(
        w.namespace == resource.namespace and selects(spec.selector, w.labels) for w in in_mesh
    ):
        out.append(
            resource.issue(
                "Warning",
                codes.NO_MATCHING_WORKLOADS,
                "selector",
                "No matching workloads for this resource with the following labels: "
                f"{_selector_text(labels)} (in namespace {resource.namespace})",
            )
        )


def _check_policy_selector(
    resource: Resource, in_mesh: Sequence[Pod], root: str, out: list[Issue]
) -> None:
    """Istio's ``analyzeNoMatchingWorkloads``."""
    spec: AuthorizationPolicy = resource.spec
    if spec.target_ref is not None or spec.target_refs:
        return
    labels = dict(spec.selector.match_labels) if spec.selector is not None else {}
    if resource.namespace == root:
        candidates = list(in_mesh)
        if spec.selector is None:
            return
    else:
        candidates = [w for w in in_mesh if w.namespace == resource.namespace]
    if not any(selects(spec.selector, w.labels) for w in candidates):
        where = "the mesh" if resource.namespace == root else f"namespace {resource.namespace}"
        out.append(
            resource.issue(
                "Warning",
                codes.NO_MATCHING_WORKLOADS,
                "selector" if spec.selector is not None else "",
                "No matching workloads for this resource with the following labels: "
                f"{_selector_text(labels) or '(none)'} (no workload with a sidecar in {where})",
            )
        )


def _namespace_exists(pattern: str, namespaces: Iterable[str]) -> bool:
    if pattern == "*":
        return True
    test = string_matcher(pattern, ignore_case=True)
    return any(test(ns) for ns in namespaces)


# ---------------------------------------------------------------- policy sources


def _selected(resource: Resource, workloads: Sequence[Pod], root: str) -> list[Pod]:
    spec: AuthorizationPolicy = resource.spec
    return [
        w
        for w in workloads
        if has_proxy(w)
        and (resource.namespace == root or w.namespace == resource.namespace)
        and selects(spec.selector, w.labels)
    ]


def _check_policy_sources(
    resource: Resource,
    workloads: Sequence[Pod],
    namespaces: set[str],
    accounts: set[tuple[str, str]],
    peer_authns: PeerAuthentications,
    root: str,
    out: list[Issue],
) -> None:
    spec: AuthorizationPolicy = resource.spec
    identities_used: list[str] = []
    for i, rule in enumerate(spec.rules or ()):
        if rule is None:
            continue
        for j, item in enumerate(rule.from_ or ()):
            if item is None or item.source is None:
                continue
            path = f"rules[{i}].from[{j}].source"
            source = item.source
            for name in _IDENTITY_FIELDS:
                if getattr(source, name):
                    identities_used.append(f"{path}.{_camel(name)}")
            for name in ("namespaces", "not_namespaces"):
                for k, pattern in enumerate(getattr(source, name)):
                    if pattern and not _namespace_exists(pattern, namespaces):
                        out.append(
                            resource.issue(
                                "Warning",
                                codes.REFERENCED_RESOURCE_NOT_FOUND,
                                f"{path}.{_camel(name)}[{k}]",
                                f'Referenced namespace not found: "{pattern}" (known: '
                                f"{', '.join(sorted(namespaces))})",
                            )
                        )
            if accounts:
                _check_accounts(resource, path, source, accounts, out)
            _note_jwt_and_remote(resource, path, source, out)
        for k, condition in enumerate(rule.when):
            if condition is None or not condition.key:
                continue
            path = f"rules[{i}].when[{k}]"
            if condition.key in _IDENTITY_KEYS:
                identities_used.append(path)
            if condition.key.startswith("request.auth."):
                _jwt_note(resource, f"{path}.key", condition.key, out)
            if condition.key == "remote.ip":
                _remote_note(resource, f"{path}.key", out)
    if identities_used:
        disabled = [
            w.name
            for w in _selected(resource, workloads, root)
            if peer_authns.for_workload(w).mode is MtlsMode.DISABLE
        ]
        if disabled:
            out.append(
                resource.issue(
                    "Warning",
                    codes.MTLS_CONFLICT,
                    identities_used[0],
                    "peer identity (principals, namespaces, service accounts, trust domains) "
                    "needs mutual TLS, but PeerAuthentication is DISABLE for "
                    f"{', '.join(sorted(disabled))}: no identity arrives there, so these never "
                    "match (their notX forms always do)",
                )
            )


def _check_accounts(
    resource: Resource,
    path: str,
    source: Source,
    running: set[tuple[str, str]],
    out: list[Issue],
) -> None:
    for k, principal in enumerate(source.principals + source.not_principals):
        if "*" in principal:
            continue
        field = "principals" if k < len(source.principals) else "notPrincipals"
        index = k if k < len(source.principals) else k - len(source.principals)
        try:
            identity = parse_principal(principal)
        except IdentityError:
            out.append(
                resource.issue(
                    "Warning",
                    codes.UNKNOWN_SERVICE_ACCOUNT,
                    f"{path}.{field}[{index}]",
                    f"{principal!r} is not a workload principal (cluster.local/ns/<namespace>/sa/"
                    "<service-account>): no mesh workload matches it",
                )
            )
            continue
        if (identity.namespace, identity.service_account) not in running:
            out.append(
                resource.issue(
                    "Warning",
                    codes.UNKNOWN_SERVICE_ACCOUNT,
                    f"{path}.{field}[{index}]",
                    f"Service Account not found for this principal: there is no service "
                    f"account {identity.service_account} in namespace {identity.namespace}",
                )
            )
    for field, values in (
        ("serviceAccounts", source.service_accounts),
        ("notServiceAccounts", source.not_service_accounts),
    ):
        for k, value in enumerate(values):
            namespace, slash, account = value.partition("/")
            if not slash:
                namespace, account = resource.namespace, value
            if (namespace, account) not in running:
                out.append(
                    resource.issue(
                        "Warning",
                        codes.UNKNOWN_SERVICE_ACCOUNT,
                        f"{path}.{field}[{k}]",
                        f"Service Account not found: there is no service account {account} in "
                        f"namespace {namespace}",
                    )
                )


def _jwt_note(resource: Resource, path: str, what: str, out: list[Issue]) -> None:
    out.append(
        resource.issue(
            "Warning",
            codes.NOT_SUPPORTED,
            path,
            f"{what} needs RequestAuthentication (JWT), which the lab does not support: no "
            "request carries a JWT, so it never matches (its notX form always does)",
        )
    )


def _remote_note(resource: Resource, path: str, out: list[Issue]) -> None:
    out.append(
        resource.issue(
            "Info",
            codes.NOT_SUPPORTED,
            path,
            "the lab's proxies trust no X-Forwarded-For hop (numTrustedProxies 0): remote IP "
            "is the connection's source address",
        )
    )


def _note_jwt_and_remote(resource: Resource, path: str, source: Source, out: list[Issue]) -> None:
    if source.request_principals or source.not_request_principals:
        field = "requestPrincipals" if source.request_principals else "notRequestPrincipals"
        _jwt_note(resource, f"{path}.{field}", field, out)
    if source.remote_ip_blocks or source.not_remote_ip_blocks:
        field = "remoteIpBlocks" if source.remote_ip_blocks else "notRemoteIpBlocks"
        _remote_note(resource, f"{path}.{field}", out)


# ---------------------------------------------------------------- DestinationRule tls


def service_of_host(host: str, namespace: str) -> tuple[str, str] | None:
    """``httpbin`` (in ``namespace``), ``httpbin.foo``, ``httpbin.foo.svc[.cluster.local]``
    → (name, namespace); None for a wildcard or an external name."""
    if "*" in host:
        return None
    name = host.lower().rstrip(".")
    for suffix in CLUSTER_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    parts = name.split(".")
    if len(parts) == 1:
        return parts[0], namespace
    if len(parts) == 2:
        return parts[0], parts[1]
    return None


def _tls_settings(rule: DestinationRule) -> list[tuple[str, ClientTLSSettings]]:
    found: list[tuple[str, ClientTLSSettings]] = []

    def collect(path: str, policy: TrafficPolicy | None) -> None:
        if policy is None:
            return
        if policy.tls is not None:
            found.append((f"{path}.tls", policy.tls))
        for k, level in enumerate(policy.port_level_settings):
            if level.tls is not None:
                found.append((f"{path}.portLevelSettings[{k}].tls", level.tls))

    collect("trafficPolicy", rule.traffic_policy)
    for i, subset in enumerate(rule.subsets):
        collect(f"subsets[{i}].trafficPolicy", subset.traffic_policy)
    return found


def _check_destination_rule_tls(
    resource: Resource,
    workloads: Sequence[Pod],
    peer_authns: PeerAuthentications,
    out: list[Issue],
) -> None:
    """Kiali's DestinationRule/PeerAuthentication mTLS checks, per written ``tls``. A subset's
    or port's settings are compared with each backing workload's mode (not per port)."""
    rule: DestinationRule = resource.spec
    service = service_of_host(rule.host, resource.namespace)
    if service is None:
        return
    name, namespace = service
    backing = [w for w in workloads if w.namespace == namespace and w.service == name]
    for path, tls in _tls_settings(rule):
        strict = [
            w.name for w in backing if has_proxy(w) and _mode(peer_authns, w) is MtlsMode.STRICT
        ]
        no_tls = [
            w.name for w in backing if not has_proxy(w) or _mode(peer_authns, w) is MtlsMode.DISABLE
        ]
        if tls.mode == "DISABLE" and strict:
            message = (
                f"clients send plaintext (tls.mode DISABLE) to {', '.join(sorted(strict))}, whose "
                "PeerAuthentication is STRICT: every connection is reset (503 UC)"
            )
        elif tls.mode == "ISTIO_MUTUAL" and no_tls:
            message = (
                f"clients send mTLS (tls.mode ISTIO_MUTUAL) to {', '.join(sorted(no_tls))}, which "
                "accept plaintext only (PeerAuthentication DISABLE or no sidecar): the TLS "
                "handshake fails (503 UF)"
            )
        elif tls.mode in ("SIMPLE", "MUTUAL") and strict:
            message = (
                f"clients originate their own TLS (tls.mode {tls.mode}) to {', '.join(sorted(strict))}, "
                "whose PeerAuthentication is STRICT and accepts only the mesh's mTLS: the "
                "handshake fails (503 UF); use ISTIO_MUTUAL inside the mesh"
            )
        else:
            continue
        out.append(resource.issue("Warning", codes.MTLS_CONFLICT, f"{path}.mode", message))


def _mode(peer_authns: PeerAuthentications, workload: Pod) -> MtlsMode:
    return peer_authns.for_workload(workload).mode


# ---------------------------------------------------------------- one policy per scope


def _check_duplicate_scopes(
    resources: Sequence[Resource], in_mesh: Sequence[Pod], root: str, out: list[Issue]
) -> None:
    """Istio uses one mesh-wide, one namespace-wide and one workload policy (the oldest): the
    lab uses the first applied; say which others are ignored."""
    by_scope: dict[str, Resource] = {}
    for resource in resources:
        if resource.kind != "PeerAuthentication":
            continue
        spec: PeerAuthentication = resource.spec
        if has_labels(spec.selector):
            continue
        first = by_scope.setdefault(resource.namespace, resource)
        if first is not resource:
            scope = "mesh" if resource.namespace == root else f"namespace {resource.namespace}"
            out.append(
                resource.issue(
                    "Warning",
                    codes.SCHEMA_WARNING,
                    "",
                    f"PeerAuthentication {first.name} already sets the {scope}-wide mode: only "
                    "one policy without selector per namespace applies (Istio keeps the oldest); "
                    "this one is ignored",
                )
            )
    reported: set[tuple[str, str]] = set()
    for workload in in_mesh:
        selecting = [
            r
            for r in resources
            if r.kind == "PeerAuthentication"
            and r.namespace == workload.namespace
            and r.namespace != root
            and has_labels(r.spec.selector)
            and selects(r.spec.selector, workload.labels)
        ]
        for extra in selecting[1:]:
            if (extra.name, selecting[0].name) in reported:
                continue
            reported.add((extra.name, selecting[0].name))
            out.append(
                extra.issue(
                    "Warning",
                    codes.SCHEMA_WARNING,
                    "selector",
                    f"workload {workload.name} is also selected by PeerAuthentication "
                    f"{selecting[0].name}: only one workload policy applies (the first); this "
                    "one is ignored for the workloads both select",
                )
            )
