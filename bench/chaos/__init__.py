"""`make chaos`: the real system under repeated faults (issue 18), figures in bench/RESULTS.md
("Reliability"). One module per run, each bounded in time; see bench/README.md."""
