"""AuthorizationPolicy, evaluated as Istio's generated Envoy RBAC filters evaluate it.

Primitives:

- ``RequestFacts``: what a sidecar knows of one inbound request — method, path, host,
  headers, the peer's verified principal (None over plaintext), addresses, port, SNI.
- ``compile_policy(resource)`` → ``CompiledPolicy``: each rule as Istio's model builds it —
  a rule matches when one of its ``from`` sources, one of its ``to`` operations and every
  ``when`` condition match; inside a source or operation the fields are ANDed, a field's
  values ORed, and ``notX`` negates the OR of its values. ``rules: [{}]`` matches every
  request; no rules matches none.
- ``AuthorizationPolicies``: the mesh's policies; ``for_workload`` picks those of the root
  namespace and of the workload's namespace whose selector matches it (policies with
  ``targetRef(s)`` are for gateways and waypoints: sidecars ignore them, as in Istio).
- ``evaluate(policies, facts)`` → ``Decision`` in Istio's order: CUSTOM (the lab has no
  extension provider, so a matching CUSTOM rule denies, as Istio fails closed on an undefined
  provider), AUDIT (marks, never decides), DENY (any match denies), then ALLOW (no ALLOW policy:
  allowed; else one must match). ``istio.io/dry-run: "true"`` policies are evaluated apart as
  Envoy's shadow rules and reported, never enforced.

A denial is Envoy's local reply: 403, body ``RBAC: access denied``, response code details
``rbac_access_denied_matched_policy[<policy id>|none]``; Envoy sets no response flag for it
(``-`` in the access log and in Istio's ``response_flags`` label).

``when`` keys: every key Istio accepts for HTTP is evaluated: ``request.headers[...]``,
``source.ip``, ``remote.ip``, ``source.namespace``, ``source.principal``,
``source.serviceAccount``, ``source.trustDomain``, ``destination.ip``, ``destination.port``,
``connection.sni``, and ``request.auth.*`` — the lab has no RequestAuthentication, so a request
never carries a JWT principal, audience, presenter or claim: those values never match (and
their ``notValues`` always do), exactly as for a request without a token in Istio. Refused
(``UnsupportedAttribute``): ``experimental.envoy.filters.*`` (raw Envoy metadata the lab's
sidecar does not have).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from mesh.config.authz_values import contains_path_template
from mesh.config.model import AuthorizationPolicy, Condition, Operation, Rule, Source
from mesh.security.identity import SPIFFE_SCHEME
from mesh.security.patterns import (
    Test,
    header_matcher,
    ip_matcher,
    namespace_regex,
    path_template_matcher,
    principal_matcher,
    service_account_regex,
    string_matcher,
    trust_domain_matcher,
)
from mesh.security.policy import ROOT_NAMESPACE, PolicyResource
from mesh.security.policy import annotations as policy_annotations  # the bare name is __future__'s
from mesh.security.workload import has_proxy, selects
from mesh.topology import Pod

DRY_RUN_ANNOTATION = "istio.io/dry-run"
DENIED_STATUS = 403
DENIED_BODY = "RBAC: access denied"
# Envoy's RBAC filter sets no response flag; its reason is in the response code details.
DENIED_RESPONSE_FLAG = "-"

Action = Literal["ALLOW", "DENY", "AUDIT", "CUSTOM"]


class UnsupportedAttribute(ValueError):
    """A ``when`` key the lab cannot evaluate (it refuses the policy rather than guess)."""


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """One inbound request as the server's sidecar sees it. Header names are lowercase."""

    method: str = "GET"
    path: str = "/"
    host: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    source_principal: str | None = None  # cluster.local/ns/X/sa/Y from the peer certificate
    source_ip: str = ""
    remote_ip: str | None = None  # the original client (X-Forwarded-For); None: source_ip
    destination_ip: str = ""
    destination_port: int = 0
    sni: str | None = None
    request_principal: str | None = None  # a JWT's iss/sub: never set in the lab

    @property
    def peer_uri(self) -> str | None:
        return SPIFFE_SCHEME + self.source_principal if self.source_principal else None

    @property
    def url_path(self) -> str:
        """The path without its query string (what Envoy's path matcher reads)."""
        return self.path.split("?", 1)[0]


Predicate = Callable[[RequestFacts], bool]
# One attribute's values and notValues, as one test of the request.
Reader = Callable[[RequestFacts], str | None]


def _attribute(
    read: Reader, make: Callable[[str], Test], values: Sequence[str], not_values: Sequence[str]
) -> list[Predicate]:
    """Istio's rule: OR over ``values``, NOT(OR over ``notValues``), both when both are set."""
    tests: list[Predicate] = []
    if values:
        positive = [make(v) for v in values]
        tests.append(lambda facts: any(t(read(facts)) for t in positive))
    if not_values:
        negative = [make(v) for v in not_values]
        tests.append(lambda facts: not any(t(read(facts)) for t in negative))
    return tests


def _peer(facts: RequestFacts) -> str | None:
    return facts.peer_uri


def _source_ip(facts: RequestFacts) -> str | None:
    return facts.source_ip


def _remote_ip(facts: RequestFacts) -> str | None:
    return facts.remote_ip if facts.remote_ip is not None else facts.source_ip


def _request_principal(facts: RequestFacts) -> str | None:
    return facts.request_principal


def _absent(facts: RequestFacts) -> str | None:
    return None


def _source_tests(policy_namespace: str, source: Source) -> list[Predicate]:
    s = source
    tests: list[Predicate] = []
    tests += _attribute(_source_ip, ip_matcher, s.ip_blocks, s.not_ip_blocks)
    tests += _attribute(_remote_ip, ip_matcher, s.remote_ip_blocks, s.not_remote_ip_blocks)
    tests += _attribute(_peer, namespace_regex, s.namespaces, s.not_namespaces)
    tests += _attribute(_peer, trust_domain_matcher, s.trust_domains, s.not_trust_domains)
    tests += _attribute(
        _peer,
        lambda v: service_account_regex(policy_namespace, v),
        s.service_accounts,
        s.not_service_accounts,
    )
    tests += _attribute(
        _request_principal, string_matcher, s.request_principals, s.not_request_principals
    )
    tests += _attribute(_peer, principal_matcher, s.principals, s.not_principals)
    return tests


def _path_test(value: str) -> Test:
    return path_template_matcher(value) if contains_path_template(value) else string_matcher(value)


def _port_test(value: str) -> Test:
    number = str(int(value))  # "08080" is port 8080, as Istio parses it
    return lambda port: port == number


def _operation_tests(operation: Operation) -> list[Predicate]:
    o = operation
    tests: list[Predicate] = []
    tests += _attribute(lambda f: str(f.destination_port), _port_test, o.ports, o.not_ports)
    tests += _attribute(lambda f: f.url_path, _path_test, o.paths, o.not_paths)
    tests += _attribute(lambda f: f.method, header_matcher, o.methods, o.not_methods)
    tests += _attribute(
        lambda f: f.host,
        lambda v: header_matcher(v, ignore_case=True),
        o.hosts,
        o.not_hosts,
    )
    return tests


def _header(facts: RequestFacts, name: str) -> str | None:
    """A request header as Envoy's header map holds it: the pseudo-headers, and ``host`` as an
    alias of ``:authority``."""
    if name in (":authority", "host"):
        return facts.host or facts.headers.get("host")
    if name == ":method":
        return facts.method
    if name == ":path":
        return facts.path
    return facts.headers.get(name)


def _bracketed(key: str, prefix: str) -> str:
    name = key[len(prefix) :]
    if not (name.startswith("[") and name.endswith("]") and len(name) > 2):
        raise ValueError(f"bad key ({key}): should have format {prefix}[name]")
    return name[1:-1]


# (reader, matcher) per plain ``when`` key; the bracketed keys are handled below.
_WHEN: dict[str, tuple[Reader, Callable[[str], Test]]] = {
    "source.ip": (_source_ip, ip_matcher),
    "remote.ip": (_remote_ip, ip_matcher),
    "source.namespace": (_peer, namespace_regex),
    "source.principal": (_peer, principal_matcher),
    "source.trustDomain": (_peer, trust_domain_matcher),
    "destination.ip": (lambda f: f.destination_ip, ip_matcher),
    "destination.port": (lambda f: str(f.destination_port), _port_test),
    "connection.sni": (lambda f: f.sni or "", string_matcher),
    "request.auth.principal": (_request_principal, string_matcher),
    "request.auth.audiences": (_absent, string_matcher),
    "request.auth.presenter": (_absent, string_matcher),
}


def _condition_tests(policy_namespace: str, condition: Condition) -> list[Predicate]:
    key = condition.key or ""
    values, not_values = condition.values, condition.not_values
    if key in _WHEN:
        read, make = _WHEN[key]
        return _attribute(read, make, values, not_values)
    if key == "source.serviceAccount":
        return _attribute(
            _peer, lambda v: service_account_regex(policy_namespace, v), values, not_values
        )
    if key.startswith("request.headers"):
        name = _bracketed(key, "request.headers").lower()
        return _attribute(lambda f: _header(f, name), header_matcher, values, not_values)
    if key.startswith("request.auth.claims"):
        _bracketed(key, "request.auth.claims")
        return _attribute(_absent, string_matcher, values, not_values)
    if key.startswith("experimental.envoy.filters."):
        raise UnsupportedAttribute(
            f"when key {key!r}: Envoy filter metadata is not available in the lab's sidecar"
        )
    raise ValueError(f"unknown attribute: {key}")


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """Alternatives on each side: the rule matches when some principal group and some
    permission group match (each group a conjunction)."""

    principals: tuple[tuple[Predicate, ...], ...]
    permissions: tuple[tuple[Predicate, ...], ...]

    def matches(self, facts: RequestFacts) -> bool:
        return any(all(t(facts) for t in group) for group in self.principals) and any(
            all(t(facts) for t in group) for group in self.permissions
        )


def compile_rule(policy_namespace: str, rule: Rule) -> CompiledRule:
    """Istio's ``authz/model.New``: ``when`` conditions join every source and operation."""
    principal_base: list[Predicate] = []
    permission_base: list[Predicate] = []
    for condition in rule.when:
        if condition is None:
            raise ValueError("when field cannot be nil")
        tests = _condition_tests(policy_namespace, condition)
        key = condition.key or ""
        side = (
            permission_base
            if key in ("destination.ip", "destination.port", "connection.sni")
            else principal_base
        )
        side.extend(tests)
    principals = tuple(
        tuple(
            (_source_tests(policy_namespace, src.source) if src and src.source else [])
            + principal_base
        )
        for src in rule.from_ or ()
    ) or (tuple(principal_base),)
    permissions = tuple(
        tuple((_operation_tests(op.operation) if op and op.operation else []) + permission_base)
        for op in rule.to or ()
    ) or (tuple(permission_base),)
    return CompiledRule(principals, permissions)


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    namespace: str
    name: str
    action: Action
    rules: tuple[CompiledRule, ...]
    dry_run: bool = False
    provider: str | None = None

    def rule_id(self, index: int) -> str:
        """Istio's RBAC policy name for rule ``index`` (what Envoy reports as matched)."""
        rule = f"ns[{self.namespace}]-policy[{self.name}]-rule[{index}]"
        if self.action == "CUSTOM":
            provider = self.provider or "default"
            return f"istio-ext-authz-{provider}-{rule}-deny-due-to-bad-CUSTOM-action"
        return rule

    def matched(self, facts: RequestFacts) -> list[str]:
        return [self.rule_id(i) for i, r in enumerate(self.rules) if r.matches(facts)]


def is_dry_run(resource: PolicyResource) -> bool:
    """The annotation's value as Go's ``strconv.ParseBool`` reads it (validation refuses
    anything else)."""
    value = policy_annotations(resource).get(DRY_RUN_ANNOTATION)
    return str(value) in ("1", "t", "T", "TRUE", "true", "True")


def compile_policy(resource: PolicyResource) -> CompiledPolicy:
    """Raises ``ValueError`` (``UnsupportedAttribute``) for a policy validation refuses."""
    spec: AuthorizationPolicy = resource.spec
    rules = tuple(
        compile_rule(resource.namespace, rule) for rule in spec.rules or () if rule is not None
    )
    return CompiledPolicy(
        namespace=resource.namespace,
        name=resource.name,
        action=spec.action or "ALLOW",
        rules=rules,
        dry_run=is_dry_run(resource),
        provider=spec.provider.name if spec.provider is not None else None,
    )


class AuthorizationPolicies:
    """The mesh's AuthorizationPolicies, compiled once, in the order applied."""

    def __init__(
        self, resources: Iterable[PolicyResource], root_namespace: str = ROOT_NAMESPACE
    ) -> None:
        self.root_namespace = root_namespace
        self._policies: list[tuple[PolicyResource, CompiledPolicy]] = [
            (r, compile_policy(r)) for r in resources if r.kind == "AuthorizationPolicy"
        ]

    def for_workload(self, workload: Pod) -> tuple[CompiledPolicy, ...]:
        """The policies the pod's proxy enforces (none without a proxy)."""
        if not has_proxy(workload):
            return ()
        chosen = []
        for resource, compiled in self._policies:
            spec: AuthorizationPolicy = resource.spec
            if spec.target_ref is not None or spec.target_refs:
                continue
            if resource.namespace not in (self.root_namespace, workload.namespace):
                continue
            if selects(spec.selector, workload.labels):
                chosen.append(compiled)
        return tuple(chosen)


Stage = Literal["CUSTOM", "DENY", "ALLOW", "NONE"]


@dataclass(frozen=True, slots=True)
class ShadowResult:
    """A dry-run evaluation Envoy reports in ``istio_dry_run_<action>_shadow_*`` metadata."""

    action: Action
    allowed: bool
    policy: str | None  # the shadow effective policy id

    @property
    def engine_result(self) -> str:
        return "allowed" if self.allowed else "denied"


@dataclass(frozen=True, slots=True)
class Decision:
    """The enforced result, what decided it, and what was only audited or dry-run."""

    allowed: bool
    stage: Stage  # NONE: no policy applies or the request passed every stage
    policy: str | None = None  # the matched rule's policy id (deny, or the allowing rule)
    audited: bool = False
    audit_policy: str | None = None
    dry_run: tuple[ShadowResult, ...] = ()

    @property
    def status(self) -> int | None:
        return None if self.allowed else DENIED_STATUS

    @property
    def body(self) -> str | None:
        return None if self.allowed else DENIED_BODY

    @property
    def response_code_details(self) -> str | None:
        """Envoy's ``%RESPONSE_CODE_DETAILS%`` for the denial."""
        if self.allowed:
            return None
        return f"rbac_access_denied_matched_policy[{self.policy or 'none'}]"


def _first_match(policies: Iterable[CompiledPolicy], facts: RequestFacts) -> str | None:
    """Envoy keeps an engine's policies in a map sorted by name: the effective policy is the
    lowest-named one that matches."""
    matched = [rule_id for policy in policies for rule_id in policy.matched(facts)]
    return min(matched) if matched else None


def _shadow(
    action: Action, policies: Sequence[CompiledPolicy], facts: RequestFacts
) -> ShadowResult | None:
    dry = [p for p in policies if p.action == action and p.dry_run]
    if not dry:
        return None
    matched = _first_match(dry, facts)
    allowed = matched is None if action == "DENY" else matched is not None
    return ShadowResult(action, allowed, matched)


def evaluate(policies: Sequence[CompiledPolicy], facts: RequestFacts) -> Decision:
    """Istio's order: CUSTOM, then AUDIT, DENY and ALLOW (the enforced rules of each; dry-run
    policies only in the shadow results)."""
    enforced = [p for p in policies if not p.dry_run]
    dry_run = tuple(
        result
        for result in (_shadow("DENY", policies, facts), _shadow("ALLOW", policies, facts))
        if result is not None
    )
    custom = _first_match((p for p in enforced if p.action == "CUSTOM"), facts)
    if custom is not None:
        return Decision(False, "CUSTOM", custom, dry_run=dry_run)
    audit = _first_match((p for p in enforced if p.action == "AUDIT"), facts)
    audited = audit is not None
    deny = _first_match((p for p in enforced if p.action == "DENY"), facts)
    if deny is not None:
        return Decision(False, "DENY", deny, audited, audit, dry_run)
    allow_policies = [p for p in enforced if p.action == "ALLOW"]
    if not allow_policies:
        return Decision(True, "NONE", None, audited, audit, dry_run)
    allow = _first_match(allow_policies, facts)
    if allow is None:
        return Decision(False, "ALLOW", None, audited, audit, dry_run)
    return Decision(True, "ALLOW", allow, audited, audit, dry_run)
