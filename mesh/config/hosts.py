"""Host names: normalisation (Lab decision 6) and Istio's wildcard intersection rules.

The lab has one namespace, ``default``: ``reviews``, ``reviews.default``,
``reviews.default.svc`` and ``reviews.default.svc.cluster.local`` are one host, and a
``:port`` suffix on a Host header is ignored when matching.
"""

from __future__ import annotations

NAMESPACE = "default"
CLUSTER_DOMAIN = "svc.cluster.local"
_SUFFIXES = (f".{NAMESPACE}.{CLUSTER_DOMAIN}", f".{NAMESPACE}.svc", f".{NAMESPACE}")


def split_host_port(authority: str) -> tuple[str, int | None]:
    """``reviews:9080`` → ("reviews", 9080); IPv6 literals in brackets are kept whole."""
    host = authority
    port = None
    if authority.startswith("["):
        end = authority.find("]")
        if end != -1:
            host = authority[: end + 1]
            rest = authority[end + 1 :]
            if rest.startswith(":") and rest[1:].isdigit():
                port = int(rest[1:])
        return host.lower(), port
    head, sep, tail = authority.rpartition(":")
    if sep and tail.isdigit():
        host, port = head, int(tail)
    return host.lower(), port


def normalize(host: str) -> str:
    """Canonical form of a host name: lowercase, no port, short service name."""
    name = split_host_port(host.strip())[0].rstrip(".")
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def fqdn(service: str) -> str:
    """``reviews`` → ``reviews.default.svc.cluster.local`` (names with dots are kept)."""
    return service if "." in service else f"{service}.{NAMESPACE}.{CLUSTER_DOMAIN}"


def host_matches(pattern: str, host: str) -> bool:
    """Does the (normalised) ``host`` fall under ``pattern`` (``*``, ``*.suffix`` or exact)?"""
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        # *.bookinfo.com matches any name ending in .bookinfo.com, not bookinfo.com itself.
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return pattern == host


def intersect(a: str, b: str) -> str | None:
    """The narrower of two overlapping host patterns, or None (Istio ``host.Names.Intersection``)."""
    if host_matches(a, b) or (a.startswith("*") and b.startswith("*") and b.endswith(a[1:])):
        return b
    if host_matches(b, a) or (a.startswith("*") and b.startswith("*") and a.endswith(b[1:])):
        return a
    return None


def strip_namespace(gateway_host: str) -> str:
    """Gateway server hosts may be ``ns/host``; the lab has one namespace."""
    _, sep, name = gateway_host.partition("/")
    return name if sep else gateway_host


def gateway_key(name: str) -> str:
    """``bookinfo-gateway`` and ``default/bookinfo-gateway`` name the same Gateway."""
    namespace, sep, short = name.partition("/")
    if sep and namespace in (NAMESPACE, "."):
        return short
    if sep:
        return name
    return short or namespace
