"""``python -m jobqueue.cli`` runs ``jobq``."""

from jobqueue.cli import main

main()
