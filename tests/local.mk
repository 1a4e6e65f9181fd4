# tests/: Criterion tests, one program per concept.
