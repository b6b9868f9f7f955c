"""Hand-made cases for the project's NAB scorer (eval/nab/scorer.py)."""

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "eval" / "nab"))
import scorer  # noqa: E402

STANDARD = (1.0, 1.0, 0.11)


def stamps(n):
    return [f"2020-01-{1 + i // 1440:02d} {(i // 60) % 24:02d}:{i % 60:02d}:00" for i in range(n)]


def sweep_one(scores, windows, profile=STANDARD):
    ts = stamps(len(scores))
    wins = [(ts[a], ts[b]) for a, b in windows]
    points = [(scores[i], None if w is None else w, scorer.scaled_sigmoid(y))
              for i, w, y in scorer.label_rows(ts, wins)]
    return scorer.sweep(points, len(wins), profile)


def test_sigmoid():
    assert scorer.scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert scorer.scaled_sigmoid(0.0) == 0.0
    assert scorer.scaled_sigmoid(3.5) == -1.0


def test_probation():
    assert scorer.probation_length(1000) == 150
    assert scorer.probation_length(10_000) == 750


def test_null_detector_scores_zero_on_the_corpus():
    corpus = scorer.load_corpus()
    rows = {name: (ts, [0.5] * len(ts)) for name, ts in corpus.items()}
    result = scorer.score_corpus(rows)
    assert result == {"standard": 0.0, "reward_low_FP_rate": 0.0, "reward_low_FN_rate": 0.0}


def test_perfect_detector_scores_100_on_the_corpus():
    corpus = scorer.load_corpus()
    windows = scorer.load_windows()
    rows = {}
    for name, ts in corpus.items():
        scores = [0.0] * len(ts)
        for a, _ in windows.get(name, []):
            scores[ts.index(next(t for t in ts if t[:19] >= a))] = 1.0
        rows[name] = (ts, scores)
    for value in scorer.score_corpus(rows).values():
        assert value == pytest.approx(100.0)


def test_fp_before_first_window_costs_a_fp():
    scores = [0.0] * 400
    scores[200] = 1.0  # after probation (60 rows), before the window
    raw, threshold, hit, fp = sweep_one(scores, [(300, 319)])
    # Detecting costs 0.11 and misses the window: worse than detecting nothing (−1).
    assert threshold == math.inf and raw == -1.0
    scores[305] = 1.0
    raw, threshold, hit, fp = sweep_one(scores, [(300, 319)])
    tp = scorer.scaled_sigmoid(-(319 - 305 + 1) / 20) / scorer.scaled_sigmoid(-1.0)
    assert (hit, fp) == (1, 1)
    assert raw == pytest.approx(tp - 0.11)


def test_earliest_detection_only():
    scores = [0.0] * 400
    scores[302] = 0.9
    scores[315] = 1.0
    raw, threshold, hit, fp = sweep_one(scores, [(300, 319)])
    assert threshold == 0.9 and hit == 1 and fp == 0
    assert raw == pytest.approx(scorer.scaled_sigmoid(-18 / 20) / scorer.scaled_sigmoid(-1.0))


def test_probation_rows_ignored():
    scores = [0.0] * 400
    scores[10] = 1.0  # inside the 60-row probation: no FP
    scores[300] = 1.0
    raw, _, hit, fp = sweep_one(scores, [(300, 319)])
    assert (hit, fp) == (1, 0) and raw == pytest.approx(1.0)


def test_fp_after_window_is_cheap_when_close():
    scores = [0.0] * 400
    scores[300] = 1.0
    scores[321] = 1.0  # two rows past the end of a 20-row window
    raw, _, hit, fp = sweep_one(scores, [(300, 319)])
    assert fp == 1
    assert raw == pytest.approx(1.0 + 0.11 * scorer.scaled_sigmoid(2 / 19))


def test_normalisation_formula_artime():
    assert scorer.normalise(57.66075, 116, (1.0, 1.0, 0.11)) == pytest.approx(74.85, abs=0.005)
    assert scorer.normalise(47.66075, 116, (1.0, 2.0, 0.11)) == pytest.approx(80.36, abs=0.005)
