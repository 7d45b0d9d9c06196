"""Load-independent speed guards: how time grows with the input, not how long one call takes."""

import time
from collections.abc import Callable


def growth(run: Callable[[int], object], small: int, large: int, repeats: int = 3) -> float:
    """Time of `run(large)` over time of `run(small)`, each the fastest of `repeats` (the fastest is the
    least disturbed by other work on the machine). Linear work grows by about large / small."""

    def fastest(n: int) -> float:
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            run(n)
            best = min(best, time.perf_counter() - start)
        return best

    return fastest(large) / fastest(small)
