"""The routing engine, pure: ``compile_snapshot`` once per config, ``decide`` per request.

No sockets, no files, no global state: randomness comes in as a ``random.Random``; the only
state is the smooth weighted round-robin position each compiled rule keeps (Lab decision 3).
"""

from mesh.routing.decision import Cluster, Forward, HeaderOps, LocalReply, RequestView
from mesh.routing.routes import ProxyIdentity, RouteTable
from mesh.routing.select import decide
from mesh.routing.table import compile_config, compile_snapshot

__all__ = [
    "Cluster",
    "Forward",
    "HeaderOps",
    "LocalReply",
    "ProxyIdentity",
    "RequestView",
    "RouteTable",
    "compile_config",
    "compile_snapshot",
    "decide",
]
