"""casty benchmarks: scenarios run in fresh processes, alternated, reported as medians and ratios."""
