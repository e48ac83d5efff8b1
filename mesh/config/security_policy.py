"""PeerAuthentication and AuthorizationPolicy (security.istio.io) as frozen, typed dataclasses.

Primitives: ``PeerAuthentication`` (``MutualTLS``, ``portLevelMtls``), ``AuthorizationPolicy``
(``Rule`` of ``RuleFrom``/``Source``, ``RuleTo``/``Operation``, ``Condition``; ``targetRef(s)``,
``ExtensionProvider`` for CUSTOM).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from mesh.config.fields import (
    WorkloadSelector,
)

# PeerAuthentication and AuthorizationPolicy (istio/api security/v1beta1, served as v1 too).
# A list written empty (``from: []``) stays distinct from one left out (None) where Istio's
# validation tells them apart.

MtlsModeName = Literal["UNSET", "DISABLE", "PERMISSIVE", "STRICT"]
AuthorizationAction = Literal["ALLOW", "DENY", "AUDIT", "CUSTOM"]


@dataclass(frozen=True, slots=True)
class MutualTLS:
    mode: MtlsModeName | None = None


@dataclass(frozen=True, slots=True)
class PeerAuthentication:
    selector: WorkloadSelector | None = None
    mtls: MutualTLS | None = None
    # Keys are the workload's (container) port numbers as written; validation checks them.
    port_level_mtls: Mapping[str, MutualTLS] | None = None


@dataclass(frozen=True, slots=True)
class PolicyTargetReference:
    group: str | None = None
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None


@dataclass(frozen=True, slots=True)
class Source:
    principals: tuple[str, ...] = ()
    not_principals: tuple[str, ...] = ()
    request_principals: tuple[str, ...] = ()
    not_request_principals: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    not_namespaces: tuple[str, ...] = ()
    service_accounts: tuple[str, ...] = ()
    not_service_accounts: tuple[str, ...] = ()
    ip_blocks: tuple[str, ...] = ()
    not_ip_blocks: tuple[str, ...] = ()
    remote_ip_blocks: tuple[str, ...] = ()
    not_remote_ip_blocks: tuple[str, ...] = ()
    trust_domains: tuple[str, ...] = ()
    not_trust_domains: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Operation:
    hosts: tuple[str, ...] = ()
    not_hosts: tuple[str, ...] = ()
    ports: tuple[str, ...] = ()
    not_ports: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    not_methods: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    not_paths: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RuleFrom:
    source: Source | None = None


@dataclass(frozen=True, slots=True)
class RuleTo:
    operation: Operation | None = None


@dataclass(frozen=True, slots=True)
class Condition:
    key: str | None = None
    values: tuple[str, ...] = ()
    not_values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Rule:
    from_: tuple[RuleFrom | None, ...] | None = field(default=None, metadata={"yaml": "from"})
    to: tuple[RuleTo | None, ...] | None = None
    when: tuple[Condition | None, ...] = ()


@dataclass(frozen=True, slots=True)
class ExtensionProvider:
    name: str | None = None


@dataclass(frozen=True, slots=True)
class AuthorizationPolicy:
    selector: WorkloadSelector | None = None
    target_ref: PolicyTargetReference | None = None
    target_refs: tuple[PolicyTargetReference, ...] = ()
    rules: tuple[Rule | None, ...] | None = None
    action: AuthorizationAction | None = None  # None = ALLOW, Istio's default
    provider: ExtensionProvider | None = None
