"""The value syntax of AuthorizationPolicy fields that both validation and evaluation read.

Primitives: ``parse_ip_block`` (``10.1.2.3`` or ``10.1.0.0/16``, as Istio's ``ValidateIPs``
accepts them), ``check_path_template`` (Istio's ``CheckValidPathTemplate`` for ``{*}`` and
``{**}``) and ``path_template_regex`` (the regex Envoy's URI template compiles to). Each raises
``ValueError`` with Istio's wording for what Istio refuses, so the analyzer and the evaluator
(``mesh.security``) agree on what is valid.
"""

from __future__ import annotations

import ipaddress
import re

MATCH_ONE_TEMPLATE = "{*}"
MATCH_ANY_TEMPLATE = "{**}"
# RFC 3986 pchar without '/', as Envoy's URI template defines a literal.
_LITERAL = "a-zA-Z0-9-._~%!$&'()+,;:@="
_VALID_LITERAL = re.compile(f"^[{_LITERAL}]+$")


def parse_ip_block(block: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """One address (a /32 or /128) or a CIDR range; ``ValueError`` as ``bad IP address (x)``
    or ``bad CIDR range (x)``."""
    try:
        if "/" in block:
            return ipaddress.ip_network(block, strict=False)
        address = ipaddress.ip_address(block)
    except ValueError as exc:
        kind = "CIDR range" if "/" in block else "IP address"
        raise ValueError(f"bad {kind} ({block}): {exc}") from None
    return ipaddress.ip_network(address)


def contains_path_template(path: str) -> bool:
    return MATCH_ONE_TEMPLATE in path or MATCH_ANY_TEMPLATE in path


def check_path_template(path: str) -> None:
    """``{**}`` only last, no other ``{``/``}``, and with a template every other segment a
    valid literal."""
    has_template = contains_path_template(path)
    seen_any = False
    for glob in path.strip("/").split("/"):
        if glob in (MATCH_ONE_TEMPLATE, MATCH_ANY_TEMPLATE):
            if seen_any:
                raise ValueError(f"invalid path template {path}: {{**}} is not the last operator")
            seen_any = glob == MATCH_ANY_TEMPLATE
            continue
        if "{" in glob or "}" in glob:
            raise ValueError(f"invalid path template {path}: '{{' or '}}' outside {{*}} and {{**}}")
        if has_template and not _VALID_LITERAL.match(glob):
            raise ValueError(
                f"invalid path template {path}: segment {glob!r} is not a valid literal"
            )


def path_template_regex(path: str) -> str:
    """Envoy's URI template: ``{*}`` one segment (``[literal]+``), ``{**}`` the rest
    (``[literal/]*``), everything else literal."""
    check_path_template(path)
    regex = ""
    for part in re.split(r"(\{\*\*\}|\{\*\})", path):
        if part == MATCH_ANY_TEMPLATE:
            regex += f"[{_LITERAL}/]*"
        elif part == MATCH_ONE_TEMPLATE:
            regex += f"[{_LITERAL}]+"
        else:
            regex += re.escape(part)
    return regex
