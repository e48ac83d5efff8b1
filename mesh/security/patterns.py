"""Istio's value matching for AuthorizationPolicy, as its generated Envoy matchers behave.

Primitives:

- ``string_matcher(value)``: Istio's one syntax for every string field — ``abc`` exact,
  ``abc*`` prefix, ``*abc`` suffix, ``*`` presence — turned into a test of an optional string
  (None: the attribute is absent). Presence (``*``) needs a non-empty value, as Istio compiles
  it to the regex ``.+``; a header's ``*`` only needs the header present (Envoy's
  ``present_match``), hence ``header_matcher``.
- ``ip_matcher(block)``: ``10.1.2.3`` or ``10.1.0.0/16`` against an address.
- ``path_template_matcher(path)``: ``/foo/{*}/bar/{**}`` as Envoy's URI template compiles it.
- ``namespace_regex``, ``service_account_regex``, ``trust_domain_matcher``: the SPIFFE URI
  tests Istio generates for ``namespaces``, ``serviceAccounts`` and ``trustDomains``.

Raises ``ValueError`` for values Istio's validation refuses (bad IP, bad template): the syntax
is ``mesh.config.authz_values``, which the analyzer checks with.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from mesh.config.authz_values import parse_ip_block, path_template_regex

Test = Callable[[str | None], bool]


def string_matcher(pattern: str, *, ignore_case: bool = False) -> Test:
    """Exact, ``prefix*``, ``*suffix`` or ``*`` (non-empty) against an optional value."""
    fold: Callable[[str], str] = str.lower if ignore_case else _same
    if pattern == "*":
        return lambda value: bool(value)
    if pattern.startswith("*"):
        suffix = fold(pattern[1:])
        return lambda value: value is not None and fold(value).endswith(suffix)
    if pattern.endswith("*"):
        prefix = fold(pattern[:-1])
        return lambda value: value is not None and fold(value).startswith(prefix)
    exact = fold(pattern)
    return lambda value: value is not None and fold(value) == exact


def header_matcher(pattern: str, *, ignore_case: bool = False) -> Test:
    """As ``string_matcher``, except that ``*`` means "the header is present" (even empty)."""
    if pattern == "*":
        return lambda value: value is not None
    return string_matcher(pattern, ignore_case=ignore_case)


def _same(text: str) -> str:
    return text


def ip_matcher(block: str) -> Test:
    network = parse_ip_block(block)

    def test(value: str | None) -> bool:
        if not value:
            return False
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return address in network

    return test


def path_template_matcher(path: str) -> Test:
    compiled = re.compile(path_template_regex(path))
    return lambda value: value is not None and compiled.fullmatch(value) is not None


def _glob_regex(value: str) -> str:
    """Istio's namespace wildcard: each ``*`` becomes ``.*``, the rest is literal."""
    return ".*".join(re.escape(part) for part in value.split("*"))


def namespace_regex(value: str) -> Test:
    """``namespaces: [foo]`` tests the peer's SPIFFE URI against ``.*/ns/foo/.*``."""
    compiled = re.compile(f".*/ns/{_glob_regex(value)}/.*")
    return lambda uri: uri is not None and compiled.fullmatch(uri) is not None


def service_account_regex(policy_namespace: str, value: str) -> Test:
    """``serviceAccounts: [ns/sa]`` (or ``sa`` in the policy's namespace)."""
    namespace, slash, account = value.partition("/")
    if not slash:
        namespace, account = policy_namespace, value
    compiled = re.compile(
        f"spiffe://.+/ns/{re.escape(namespace)}/(.+/|)sa/{re.escape(account)}(/.+)?"
    )
    return lambda uri: uri is not None and compiled.fullmatch(uri) is not None


def trust_domain_matcher(value: str) -> Test:
    if value == "*":
        return lambda uri: uri is not None and uri.startswith("spiffe://")
    if "*" not in value:
        prefix = f"spiffe://{value}/"
        return lambda uri: uri is not None and uri.startswith(prefix)
    head, _, tail = value.partition("*")
    compiled = re.compile(f"spiffe://{re.escape(head)}[^/]*{re.escape(tail)}/.*")
    return lambda uri: uri is not None and compiled.fullmatch(uri) is not None


def principal_matcher(value: str) -> Test:
    """``principals: [cluster.local/ns/foo/sa/sleep]`` against the peer's SPIFFE URI (Istio
    prefixes ``spiffe://``; ``*`` = any peer certificate)."""
    if value == "*":
        return lambda uri: bool(uri)
    return _with_scheme(string_matcher(value))


def _with_scheme(test: Test) -> Test:
    def on_uri(uri: str | None) -> bool:
        if uri is None or not uri.startswith("spiffe://"):
            return False
        return test(uri[len("spiffe://") :])

    return on_uri
