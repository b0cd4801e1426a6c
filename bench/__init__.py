"""Benchmarks, side by side in one run: queues, the autoscaler against KEDA + HPA, the operator.

Run with ``python -m bench --quick`` (a few minutes) or ``--full``; see bench/RESULTS.md.
"""
