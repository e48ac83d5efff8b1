"""Everything ``meshctl analyze``, ``meshctl apply`` and the manager check, in one call.

``analyze_all(resources, topology)``: ``mesh.config.validate.analyze`` (each resource's fields
and the routing cross-checks: file:line, field path, did-you-mean) and, beside it,
``mesh.security.analysis.analyze_security`` (PeerAuthentication, DestinationRule ``tls`` and
AuthorizationPolicy against the workloads: selectors matching nothing, mTLS conflicts,
identities that never arrive, unknown service accounts). The security checks read each
resource once, as the first definition of its key (the duplicate is already an error).
"""

from __future__ import annotations

from collections.abc import Sequence

from mesh.config.issues import Issue
from mesh.config.resource import Resource
from mesh.config.validate import analyze
from mesh.security.analysis import analyze_security
from mesh.topology import Topology


def analyze_all(resources: Sequence[Resource], topology: Topology) -> list[Issue]:
    issues = analyze(resources, topology)
    unique: dict[tuple[str, str, str], Resource] = {}
    for resource in resources:
        unique.setdefault(resource.key, resource)
    seen = set(issues)
    for issue in analyze_security(list(unique.values()), topology):
        if issue not in seen:
            seen.add(issue)
            issues.append(issue)
    return issues
