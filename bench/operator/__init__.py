"""The operator on the local cluster: reaction time, and its cost with many JobQueues."""
