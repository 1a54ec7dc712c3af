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
