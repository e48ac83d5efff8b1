"""``python -m mesh.console --mesh-dir DIR [--port 20001] [--prometheus URL]``."""

import sys

from mesh.console.run import main

sys.exit(main())
