"""How the in-process benchmarks time a call: the median of several runs."""

import statistics
import time
from collections.abc import Callable


def median_seconds(action: Callable[[], object], repeats: int) -> float:
	times = []
	for _ in range(repeats):
		start = time.perf_counter()
		action()
		times.append(time.perf_counter() - start)
	return statistics.median(times)
