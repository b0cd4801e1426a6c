"""Autoscaler simulator: this operator's decide() against KEDA + HPA and a fixed fleet.

Stdlib only (random, heapq), deterministic for a seed, so tests can run it without extras.
"""
