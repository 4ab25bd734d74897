"""bench/soak.py's rule for "a stream's memories match what it produces alone", on spans seen in a real run: a live
frame's time jitters across a clip boundary, so one run makes a 3 s clip where the other makes 2 + the next."""
from bench.soak import gaps, long_clips, unmatched

TOL = 1.0 + 2 / 15
SOLO = [(0.0, 2.06), (2.06, 4.06), (4.06, 6.06), (6.06, 8.06), (8.06, 11.06), (11.06, 13.56)]
SOAK = [(0.01, 2.03), (2.03, 4.03), (4.03, 7.03), (7.03, 10.03), (10.03, 12.03), (12.03, 15.03)]


def test_jittered_boundaries_match_within_one_sampling_interval():
    assert unmatched(SOAK, SOLO, TOL, 12.0) == [] and unmatched(SOLO, SOAK, TOL, 12.0) == []
    assert gaps(SOAK) == 0 and long_clips(SOAK, 2.0, 12.0) == 2 and long_clips(SOLO, 2.0, 12.0) == 1


def test_a_missing_stretch_does_not_match():
    holed = SOAK[:2] + SOAK[4:]  # 6 s of the stream never stored
    assert gaps(holed) == 1 and unmatched(SOLO, holed, TOL, 12.0) == [4.06, 6.06, 8.06]
