"""engine.core.paced: the progress of a long job, reported from the caller's thread every tick, never going back,
and naming every step, also one that began and ended between two ticks (the minutes' first section)."""
import time

import pytest

from engine.core import paced


def test_every_step_is_named_in_order_and_the_fraction_never_goes_back():
    def work(cb):
        for i in range(3):
            cb(i, 5, f"quick {i + 1}")    # three steps inside one tick
        cb(3, 5, "slow")
        time.sleep(0.35)
        cb(4, 5, "last")                  # said right before the work ends
        return "result"

    seen = []
    assert paced(work, lambda f, what: seen.append((f, what)), tick=0.1) == "result"
    names = [w for _, w in seen]
    order = [names.index(w) for w in ("quick 1", "quick 2", "quick 3", "slow", "last")]
    assert order == sorted(order)
    fr = [f for f, _ in seen]
    assert fr == sorted(fr) and 0.0 <= fr[0] and fr[-1] <= 1.0


def test_an_error_in_the_work_reaches_the_caller():
    def work(cb):
        cb(0, 2, "first")
        raise ValueError("broken bank")

    with pytest.raises(ValueError, match="broken bank"):
        paced(work, lambda f, what: None, tick=0.05)
