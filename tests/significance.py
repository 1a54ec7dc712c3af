"""Bounds for accuracy assertions that their sample size justifies: a one-sided binomial test."""

from __future__ import annotations

from math import comb

ALPHA = 1e-3  # a test that asserts a learned effect fails by chance at most once in a thousand runs


def binomial_tail(correct: int, n: int, chance: float) -> float:
    """P(X >= correct) for X ~ Binomial(n, chance): how often guessing scores `correct` of `n` or more."""
    return sum(comb(n, k) * chance**k * (1 - chance) ** (n - k) for k in range(max(correct, 0), n + 1))


def above_chance(correct: int, n: int, chance: float, alpha: float = ALPHA) -> bool:
    """`correct` of `n` is more than guessing gives, at significance `alpha`."""
    return binomial_tail(correct, n, chance) < alpha


def fewest_above_chance(n: int, chance: float, alpha: float = ALPHA) -> int:
    """The fewest correct of `n` that `above_chance` accepts."""
    return next(k for k in range(n + 1) if above_chance(k, n, chance, alpha))


def binomial_cdf(correct: int, n: int, accuracy: float) -> float:
    """P(X <= correct) for X ~ Binomial(n, accuracy)."""
    return 1.0 - binomial_tail(correct + 1, n, accuracy)


def most_at_chance(n: int, chance: float, alpha: float = ALPHA) -> int:
    """The most correct of `n` that guessing exceeds with probability below `alpha`: a model at chance
    scores more than this in fewer than `alpha` of runs (the false-fail rate of "no better than chance")."""
    return fewest_above_chance(n, chance, alpha) - 1


def false_pass_rate(n: int, chance: float, accuracy: float, alpha: float = ALPHA) -> float:
    """How often a model of true `accuracy` still scores at most `most_at_chance(n, chance)`: the chance that
    "no better than chance" misses it (one minus the test's power against that accuracy)."""
    return binomial_cdf(most_at_chance(n, chance, alpha), n, accuracy)
