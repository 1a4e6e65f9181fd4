# Tests of the benchmark harness (not benchmarks: nothing here is timed).
