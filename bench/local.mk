# bench/: workloads and the harness; not part of make check.
