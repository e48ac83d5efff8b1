"""meshlab's Locust file: Bookinfo visitors, the live version view, the demo load shapes.

    locust -f loadtests/locustfile.py --host http://localhost:8080        # web UI on :8089
    MESHLAB_SHAPE=steady locust -f loadtests/locustfile.py --headless      # demo load
    locust -f loadtests/locustfile.py --tags tester                         # only the tester

What each piece is: ``users.py`` (the visitors and their attribution), ``live.py`` (the
"Versions" tab and the ``/versions`` charts), ``shapes.py`` (``MESHLAB_SHAPE=steady|ramp``).
Environment: ``MESHLAB_GATEWAY`` (when no ``--host``), ``MESHLAB_HOST_HEADER``
(``bookinfo.local``), ``MESHLAB_TEST_HOST_HEADER`` (``test.bookinfo.local``), ``MESHLAB_SHAPE``,
``MESHLAB_USERS``, ``MESHLAB_SPAWN_RATE``, ``MESHLAB_RAMP_SECONDS``, ``MESHLAB_STEP_SECONDS``,
``MESHLAB_DURATION``, ``MESHLAB_WAIT`` (think time ``0.5,2`` s; ``0`` for a throughput run).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Locust imports this file by path (-f), not as part of the package: make the repository
# root importable so "loadtests.*" resolves both in the container (/app) and in a checkout.
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from loadtests import live, shapes  # noqa: E402  (after the sys.path fix above)
from loadtests.users import (  # noqa: E402
    AnonymousReader,
    BlueGreenTester,
    CookieVisitor,
    Tester,
)

# Locust runs every User subclass and uses every LoadTestShape found in this module's
# namespace: bind the users by name, and a shape only when one is asked for.
_shape = shapes.selected(os.environ.get("MESHLAB_SHAPE", ""))
if _shape is not None:
    MeshlabShape = _shape

__all__ = ["AnonymousReader", "BlueGreenTester", "CookieVisitor", "Tester", "live"]
