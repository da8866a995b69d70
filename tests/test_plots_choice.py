"""predictions.png favours the mistakes (issue 10): which test images the grid shows."""

from __future__ import annotations

import numpy as np

from convkit.training.plots import grid_choice


def _case(n=200, wrong=50, seed=3):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    predicted = labels.copy()
    bad = rng.choice(n, wrong, replace=False)
    predicted[bad] = (labels[bad] + 1) % 10
    probs = rng.random((n, 10))
    probs /= probs.sum(axis=1, keepdims=True)
    return labels, predicted, probs, bad


def test_the_most_confident_mistakes_first_then_right_answers():
    labels, predicted, probs, bad = _case()
    chosen = grid_choice(labels, predicted, probs, 40)
    assert len(chosen) == len(set(chosen)) == 40
    shown_wrong = [i for i in chosen if labels[i] != predicted[i]]
    assert len(shown_wrong) == 30 and list(chosen[:30]) == shown_wrong
    confidence = {i: probs[i, predicted[i]] for i in bad}
    expected = sorted(bad, key=lambda i: -confidence[i])[:30]
    assert shown_wrong == expected
    assert all(labels[i] == predicted[i] for i in chosen[30:])


def test_few_mistakes_all_shown_and_a_perfect_model_still_fills_the_grid():
    labels, predicted, probs, bad = _case(wrong=5)
    chosen = grid_choice(labels, predicted, probs, 40)
    assert len(chosen) == 40 and set(bad) <= set(chosen)
    labels, predicted, probs, _ = _case(wrong=0)
    assert len(grid_choice(labels, predicted, probs, 40)) == 40


def test_a_model_wrong_everywhere_fills_the_grid_with_mistakes():
    labels, predicted, probs, _ = _case(n=50, wrong=50)
    chosen = grid_choice(labels, predicted, probs, 40)
    assert len(chosen) == 40 and all(labels[i] != predicted[i] for i in chosen)
