"""The app of a client pod (Istio's sleep / curl and fortio samples): serve nothing, wait.

``python -m services.sleep`` blocks until SIGTERM or SIGINT, like the sample's
``/bin/sleep infinity``; the pod exists so that commands run beside it (``meshlab exec``,
``docker exec``) with its network: its sidecar, or none.
"""

from __future__ import annotations

import signal
import sys


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            signal.pause()
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
