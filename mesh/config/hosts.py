"""Host names as Kubernetes and Istio resolve them, across namespaces.

- In config, a short name (no dot) is a Service in the resource's own namespace:
  ``qualify("reviews", "default")`` is ``reviews.default.svc.cluster.local``; a name with a dot
  is taken as written (Istio's ``ResolveShortnameToFQDN``: ``reviews.default`` is *not*
  expanded, so it names no Service).
- A proxy reaches a Service under the names Kubernetes DNS gives it from the proxy's
  namespace (``aliases``): the FQDN, ``name.ns.svc`` and ``name.ns`` from anywhere, the bare
  ``name`` only from the Service's own namespace (Istio's sidecar vhost domains).
- A VirtualService names a Gateway as ``name`` (its own namespace) or ``ns/name``
  (``gateway_ref``); a Gateway server host may be ``ns/host`` (``server_host``: which
  namespaces' VirtualServices may bind it).
- ``host_matches`` / ``intersect``: Istio's wildcard rules; a ``:port`` on a Host header is
  ignored when matching (``bare``).
"""

from __future__ import annotations

CLUSTER_DOMAIN = "cluster.local"
SERVICE_SUFFIX = f".svc.{CLUSTER_DOMAIN}"
MESH_GATEWAY = "mesh"


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


def bare(host: str) -> str:
    """A host as matched: lowercase, no ``:port``, no trailing dot."""
    return split_host_port(host.strip())[0].rstrip(".")


def _is_ip(name: str) -> bool:
    if name.startswith("["):
        return True
    parts = name.split(".")
    return len(parts) == 4 and all(p.isdigit() for p in parts)


def qualify(host: str, namespace: str) -> str:
    """A config host as Istio resolves it in ``namespace`` (``ResolveShortnameToFQDN``)."""
    name = bare(host)
    if not name or name == "*" or "." in name or _is_ip(name):
        return name
    return service_fqdn(name, namespace)


def service_fqdn(name: str, namespace: str) -> str:
    return f"{name}.{namespace}{SERVICE_SUFFIX}"


def service_of(fqdn: str) -> tuple[str, str] | None:
    """(name, namespace) of a Service FQDN, or None for any other host."""
    if not fqdn.endswith(SERVICE_SUFFIX):
        return None
    parts = fqdn[: -len(SERVICE_SUFFIX)].split(".")
    if len(parts) != 2 or not all(parts):
        return None
    return parts[0], parts[1]


def aliases(host: str, proxy_namespace: str) -> tuple[str, ...]:
    """The names a proxy in ``proxy_namespace`` reaches ``host`` by (a Service FQDN gets its
    Kubernetes DNS forms; any other host only itself)."""
    service = service_of(host)
    if service is None:
        return (host,)
    name, namespace = service
    names = (host, f"{name}.{namespace}.svc", f"{name}.{namespace}")
    return (*names, name) if namespace == proxy_namespace else names


def display(host: str, namespace: str = "default") -> str:
    """A short, unambiguous name for reports: ``reviews`` for a Service of ``namespace``,
    ``httpbin.foo`` for one elsewhere, any other host as it is."""
    service = service_of(host)
    if service is None:
        return host
    name, service_namespace = service
    return name if service_namespace == namespace else f"{name}.{service_namespace}"


def host_matches(pattern: str, host: str) -> bool:
    """Does the (bare) ``host`` fall under ``pattern`` (``*``, ``*.suffix`` or exact)?"""
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
    """The DNS part of a Gateway server host ``ns/host``."""
    _, sep, name = gateway_host.partition("/")
    return name if sep else gateway_host


def server_host(gateway_host: str, gateway_namespace: str) -> tuple[str, str]:
    """(namespace whose VirtualServices may bind, DNS name) of a Gateway server host:
    ``ns/host`` → ns (``.`` the Gateway's own, ``*`` any); a plain host → any."""
    namespace, sep, name = gateway_host.partition("/")
    if not sep:
        return "*", bare(gateway_host)
    return (gateway_namespace if namespace == "." else namespace), bare(name)


def gateway_ref(name: str, namespace: str) -> str:
    """``namespace/name`` of a Gateway a VirtualService in ``namespace`` names (Istio's
    ``resolveGatewayName``: ``name``, ``ns/name``, ``./name``, legacy ``name.ns.svc...``);
    the reserved ``mesh`` stays ``mesh``."""
    if name == MESH_GATEWAY:
        return name
    head, sep, tail = name.partition("/")
    if sep:
        return f"{namespace if head == '.' else head}/{tail}"
    if "." in name:
        short, _, rest = name.partition(".")
        return f"{rest.partition('.')[0]}/{short}"
    return f"{namespace}/{name}"
