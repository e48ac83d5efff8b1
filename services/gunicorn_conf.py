"""gunicorn settings shared by every Bookinfo service.

Run a service with, e.g.::

    PORT=9080 gunicorn -c python:services.gunicorn_conf 'services.reviews.app:create_app()'

gthread workers keep connections alive between requests: the sidecar in front of the app
reuses its upstream connections, and a sync worker would close each one after one request.
"""

import os

bind = os.environ.get("BIND") or f"127.0.0.1:{os.environ.get('PORT', '9080')}"
worker_class = "gthread"
# One worker by default: readiness toggles and posted ratings live in the worker's memory,
# so a pod must be one process for them to mean anything.
workers = int(os.environ.get("GUNICORN_WORKERS", "1"))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
# Longer than any proxy's idle timeout in front of us (the sidecar's pool, Envoy's 60 s
# default), so the proxy, not gunicorn, closes idle connections and never reuses a dead one.
keepalive = 75
# A request may legitimately wait 2 x 3 s on reviews plus injected delays.
timeout = 60
graceful_timeout = 5
# gunicorn >= 25 opens a control socket at one fixed path per user; a lab runs many
# gunicorns side by side, so turn it off (older versions ignore the unknown setting).
control_socket_disable = True
