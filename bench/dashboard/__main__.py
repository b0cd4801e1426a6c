"""`python -m bench.dashboard`: see bench/dashboard/run.py."""

from bench.dashboard.run import main

raise SystemExit(main())
