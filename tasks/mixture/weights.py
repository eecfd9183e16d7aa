"""Per-source weights and character targets: pure functions over {source: characters}.

Weights always cover exactly the sources that hold text and sum to 1: a source named in a static recipe but
absent from the data gets nothing, and its share goes to the others in proportion to theirs (the plan reports
it with a warning). Targets split a character budget by weight, then cap every source at ``max_epochs`` passes
over its own text and hand what a capped source cannot take to the uncapped ones — the data-constrained
recipe of Muennighoff et al. 2023: repeat scarce data up to ~4 epochs, then fill with other data.
"""

from __future__ import annotations

from collections.abc import Mapping


def normalise(weights: Mapping[str, float]) -> dict[str, float]:
    """Return the weights scaled to sum to 1; raise when they are all zero.

    >>> normalise({"news": 3, "forum": 1})
    {'news': 0.75, 'forum': 0.25}
    """
    total = sum(weights.values())
    if total <= 0:
        raise ValueError(f"the weights {dict(weights)} sum to {total}: at least one source with text needs a positive weight")
    return {s: w / total for s, w in weights.items()}


def present(chars: Mapping[str, int]) -> list[str]:
    """Return the sources that hold any text, in name order."""
    return sorted(s for s, n in chars.items() if n > 0)


def static_weights(chars: Mapping[str, int], requested: Mapping[str, float], default_weight: float) -> dict[str, float]:
    """Return the requested weights over the sources with text (others at ``default_weight``), normalised.

    >>> static_weights({"news": 100, "forum": 50, "shop": 0}, {"news": 2, "shop": 5}, 1.0)
    {'forum': 0.3333333333333333, 'news': 0.6666666666666666}
    """
    return normalise({s: float(requested.get(s, default_weight)) for s in present(chars)})


def temperature_weights(chars: Mapping[str, int], temperature: float) -> dict[str, float]:
    """Return p ∝ n^(1/T) over the sources' character counts n.

    >>> temperature_weights({"big": 900, "small": 100}, 1.0)
    {'big': 0.9, 'small': 0.1}
    >>> {s: round(p, 3) for s, p in temperature_weights({"big": 900, "small": 100}, 2.0).items()}
    {'big': 0.75, 'small': 0.25}
    """
    return normalise({s: chars[s] ** (1.0 / temperature) for s in present(chars)})


def uniform_weights(sources: list[str]) -> dict[str, float]:
    """Return equal weights over ``sources``."""
    return {s: 1.0 / len(sources) for s in sources}


def source_targets(weights: Mapping[str, float], chars: Mapping[str, int], budget: float, max_epochs: int) -> dict[str, float]:
    """Return each source's target characters: weight × budget, capped at max_epochs × its text, the rest re-split.

    Water-filling: a source whose share of what is left exceeds its cap is fixed at the cap and leaves the
    pool; the remaining budget is split again over the rest by weight, until no share exceeds its cap. When
    every source is capped the targets sum to less than the budget (the plan warns).

    >>> source_targets({"a": 0.5, "b": 0.5}, {"a": 10, "b": 1000}, 400, max_epochs=4)
    {'a': 40.0, 'b': 360.0}
    """
    targets = {s: 0.0 for s in chars}
    active = {s for s, w in weights.items() if w > 0 and chars.get(s, 0) > 0}
    remaining = float(budget)
    while active:
        total = sum(weights[s] for s in active)
        capped = {s for s in active if weights[s] / total * remaining > max_epochs * chars[s]}
        if not capped:
            for s in active:
                targets[s] = weights[s] / total * remaining
            break
        for s in capped:
            targets[s] = float(max_epochs * chars[s])
            remaining -= targets[s]
        active -= capped
    return targets
