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


def evidence_since(analysis_starts: Iterable[datetime | None], began: datetime) -> datetime:
    """When the evidence a look judges begins: the earliest start of the release's analysis steps (the
    same version at every weight, so the counts carry), or ``began`` when none has started before."""
    return min([s for s in analysis_starts if s is not None] + [began])
