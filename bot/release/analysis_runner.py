"""The analysis runner's decision policy (pure): what a step does after each look of the judge.

The engine's driver (:func:`bot.release.driven.analyse`) waits, queries and posts; the bench
(``bench/analysis.py``) simulates time and traffic; both call :func:`decide` after each verdict, so
the flow the bench measures is the product's own:

* **pass**: the step is done, the canary moves on to the next weight;
* **fail**: abort (``mode="auto"``), or ask a person to continue or abort (``mode="advise"``);
* **wait**: look again after the interval. A *blind* look (nothing to judge: no metrics, no canary
  request, no stable) counts; ``max_inconclusive`` of them in a row ask a person. A look that sees
  traffic but is not decided yet keeps waiting, saying how much more it needs, until the step has
  waited ``max_wait`` seconds: then a person is asked.

With ``HELLO_ANALYSIS_LOAD_RPS=auto`` the analysis load's rate is chosen after each look too
(:func:`load_rate`): enough that what the judge still needs comes within :data:`LOAD_LOOKS` looks.

The evidence carries across steps (:func:`evidence_since`): every look judges the counts since the
canary's first analysed step began, which the judge's confidence sequences allow (see
:mod:`bot.release.judge`); each step still waits at least one interval at its own weight. The price:
a canary that degrades only under a larger share is judged on evidence that includes the smaller
shares, so it is seen later than on the step's own counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from bot.release.judge import State, Verdict, duration


class Action(StrEnum):
    NEXT = "next"  # the step passed: on to the next weight
    ABORT = "abort"  # the canary failed: weight 0, scaled to 0
    ASK = "ask"  # a person decides: continue or abort
    WAIT = "wait"  # look again after the interval


@dataclass(frozen=True, kw_only=True)
class Policy:
    mode: str = "auto"  # auto: a failing canary is aborted; advise: a person is asked
    max_inconclusive: int = 3  # blind looks in a row before a person is asked
    max_wait_seconds: float = 1800.0  # a step undecided this long asks a person

    @classmethod
    def from_config(cls, config: Any) -> Policy:
        return cls(mode=config.analysis_mode, max_inconclusive=config.analysis_max_inconclusive,
                   max_wait_seconds=config.analysis_max_wait_seconds)


@dataclass(frozen=True)
class Decision:
    action: Action
    inconclusive: int  # blind looks in a row, after this one (the step keeps it)
    question: str = ""  # for ASK: what the person is asked


def decide(verdict: Verdict, *, policy: Policy, percent: int, inconclusive: int, waited: float) -> Decision:
    """The step's next move after ``verdict``; ``inconclusive`` blind looks in a row came before it,
    and the step has been analysed for ``waited`` seconds."""
    if verdict.state is State.PASS:
        return Decision(Action.NEXT, 0)
    if verdict.state is State.FAIL:
        if policy.mode == "auto":
            return Decision(Action.ABORT, 0)
        return Decision(Action.ASK, 0, f"The canary failed analysis at {percent}%: abort it, or continue if you "
                                       "know why")
    if verdict.blind:
        blind = inconclusive + 1
        if blind >= policy.max_inconclusive:
            return Decision(Action.ASK, 0, f"{blind} checks in a row could not judge the canary ({verdict.reason}): "
                                           "continue, or abort it?")
        return Decision(Action.WAIT, blind)
    if waited >= policy.max_wait_seconds:
        return Decision(Action.ASK, 0, f"The analysis at {percent}% is still not decided after {duration(waited)} "
                                       f"({verdict.reason}): continue, or abort it?")
    return Decision(Action.WAIT, 0)


LOAD_LOOKS = 3
"""``auto`` load aims to bring what a waiting look still needs within this many intervals."""

NICE_RATES = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)


def load_rate(verdict: Verdict, *, current: int, cap: int, interval: float) -> int:
    """The analysis load (requests per second to each track) for the next looks, when it is ``auto``.

    A waiting look that sees traffic says how many more canary requests would decide it
    (:meth:`Verdict.needs`); the load is what the canary's own traffic (the rate seen, less the current
    load) lacks to bring them within :data:`LOAD_LOOKS` intervals, rounded up to 1, 2 or 5 times a power
    of ten (so the rate changes seldom) and at most ``cap``. When the judge cannot tell how many it needs,
    the load doubles. It never goes down within a step, and a look that passes, fails or is blind keeps it
    as it is.
    """
    if verdict.state is not State.WAIT or verdict.blind or current >= cap:
        return min(current, cap)
    more = verdict.needs()
    if more is None:
        wanted = max(2 * current, NICE_RATES[0])
    else:
        seen = verdict.canary_requests / verdict.seconds if verdict.seconds > 0 else 0.0
        real = max(seen - current, 0.0)  # the canary's own traffic, counting the load as if it ran all along
        wanted = more / (LOAD_LOOKS * interval) - real
        if wanted <= current:
            return current
    nice = next((r for r in NICE_RATES if r >= wanted), NICE_RATES[-1])
    return max(current, min(nice, cap))


def evidence_since(analysis_starts: Iterable[datetime | None], began: datetime) -> datetime:
    """When the evidence a look judges begins: the earliest start of the release's analysis steps (the
    same version at every weight, so the counts carry), or ``began`` when none has started before."""
    return min([s for s in analysis_starts if s is not None] + [began])
