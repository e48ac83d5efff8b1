"""A WSGI app for the edge tests, served by a real gunicorn (gthread, as the lab's pods are).

Every request is logged as ``METHOD TARGET``; ``GET /__seen`` (asked directly, not through a
proxy) returns the log as JSON. The app never reads a request body, like a Flask view for a
GET: gunicorn then discards the unread body when it parses the next request on the
connection, which is what makes a proxy's framing mistake visible as a smuggled request.
a path with ``echo`` in it is answered with the request's headers as JSON (lowercase names, as received);
``/slow...`` answers after 0.3 s.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

SEEN: list[str] = []
LOCK = threading.Lock()


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    query = environ.get("QUERY_STRING", "")
    target = f"{path}?{query}" if query else path
    if path == "/__seen":
        with LOCK:
            body = json.dumps(SEEN).encode()
    else:
        line = f"{environ['REQUEST_METHOD']} {target}"
        with LOCK:
            SEEN.append(line)
        body = line.encode()
        if "echo" in path:
            headers = {
                key[5:].lower().replace("_", "-"): value
                for key, value in environ.items()
                if key.startswith("HTTP_")
            }
            body = json.dumps({"request": line, "headers": headers}).encode()
        elif path.startswith("/slow"):
            time.sleep(0.3)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
