#!/usr/bin/env python3
"""Local Kubernetes without Docker: `python hack/localcluster.py up|down|status|logs|env`.

See hack/README.md. The code lives in the hack/localcluster/ package beside this file.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from localcluster.cli import main

if __name__ == "__main__":
    sys.exit(main())
