"""The promotion gate's decision: is a candidate no worse than the champion on every gate metric?

``ppl.*`` metrics are better lower, every other metric (accuracies, rates) better higher. The comparison is
only meaningful on the same evaluation sets: the caller makes sure both sets of metrics come from them
(``EvalResult.eval_digest``). This module decides; ``flows/evaluate.py`` moves the registry alias.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class GateDecision:
    """Whether the candidate takes the champion alias, and why (one line per metric, or why there is nothing to compare)."""

    promote: bool
    reasons: tuple[str, ...]

    @property
    def summary(self) -> str:
        return "; ".join(self.reasons)


def lower_is_better(metric: str) -> bool:
    """Return whether smaller values of ``metric`` are better (perplexities).

    >>> lower_is_better("ppl.heldout"), lower_is_better("arith.self_consistency")
    (True, False)
    """
    return metric.startswith("ppl.")


def no_worse(metric: str, candidate: float, champion: float, tolerance: float) -> bool:
    """Return whether ``candidate`` is no worse than ``champion`` on ``metric``, allowing ``tolerance`` × the champion's value.

    >>> no_worse("ppl.heldout", 101.0, 100.0, 0.0), no_worse("ppl.heldout", 101.0, 100.0, 0.02), no_worse("arith.cot", 0.5, 0.5, 0.0)
    (False, True, True)
    """
    slack = tolerance * abs(champion)
    return candidate <= champion + slack if lower_is_better(metric) else candidate >= champion - slack


def gate_decision(candidate: dict[str, float], champion: dict[str, float] | None, metrics: list[str], tolerance: float) -> GateDecision:
    """Return the gate's decision on ``candidate`` against ``champion`` (None: there is no champion yet).

    >>> gate_decision({"arith.self_consistency": 0.2, "ppl.heldout": 90.0}, {"arith.self_consistency": 0.1, "ppl.heldout": 95.0}, ["arith.self_consistency", "ppl.heldout"], 0.0).reasons
    ('arith.self_consistency 0.2 >= champion 0.1', 'ppl.heldout 90 <= champion 95')
    >>> gate_decision({"arith.self_consistency": 0.2, "ppl.heldout": 99.0}, {"arith.self_consistency": 0.1, "ppl.heldout": 95.0}, ["arith.self_consistency", "ppl.heldout"], 0.0)
    GateDecision(promote=False, reasons=('ppl.heldout 99 is worse than champion 95',))
    """
    missing = [m for m in metrics if not _finite(candidate.get(m))]
    if missing:
        return GateDecision(False, tuple(f"{m} was not measured on the candidate" for m in missing))
    if champion is None:
        return GateDecision(True, ("no champion yet",))
    unmeasured = [m for m in metrics if not _finite(champion.get(m))]
    if unmeasured:
        return GateDecision(True, tuple(f"{m} was not measured on the champion" for m in unmeasured))
    worse = [f"{m} {candidate[m]:.6g} is worse than champion {champion[m]:.6g}" for m in metrics if not no_worse(m, candidate[m], champion[m], tolerance)]
    if worse:
        return GateDecision(False, tuple(worse))
    sign = {True: "<=", False: ">="}
    return GateDecision(True, tuple(f"{m} {candidate[m]:.6g} {sign[lower_is_better(m)]} champion {champion[m]:.6g}" for m in metrics))


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
