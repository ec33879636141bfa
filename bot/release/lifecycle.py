"""A release's one lifecycle, from the request to its end: its states, the events that move it, and the
pure transition between them.

::

    queued --open--> pending --approve--> running --succeed--> succeeded
                                                  --fail-----> failed
    queued | pending --reject--> rejected, --withdraw--> withdrawn, --cancel--> cancelled
    pending --expire--> expired
    queued | pending | running --supersede--> superseded

:func:`transition` refuses any other move (:class:`IllegalMove`): callers decide under a compare-and-swap
with :func:`allowed` whether an event still applies to what they read, and a finished release never moves.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    QUEUED = "queued"  # waits for the change before it on the same service and environment
    PENDING = "pending"  # holds the lock and waits for approval
    RUNNING = "running"  # approved: its steps are carried out (until its outcome is recorded)
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"  # by an approver
    EXPIRED = "expired"  # nobody decided in time
    WITHDRAWN = "withdrawn"  # by its requester, before it ran
    SUPERSEDED = "superseded"  # a rollback took the lock, or nobody advanced it any more
    CANCELLED = "cancelled"  # it could not be wholly made (its message never posted or never recorded)


class Event(StrEnum):
    OPEN = "open"  # the lock names it: its approval opens
    APPROVE = "approve"  # the last approval it needs (or none needed)
    REJECT = "reject"
    WITHDRAW = "withdraw"
    EXPIRE = "expire"
    CANCEL = "cancel"
    SUPERSEDE = "supersede"
    SUCCEED = "succeed"  # its outcome recorded, a success
    FAIL = "fail"  # its outcome recorded, a failure


class IllegalMove(ValueError):
    """An event that does not apply to the state (``transition`` refuses it)."""

    def __init__(self, state: State, event: Event) -> None:
        super().__init__(f"a {state} release cannot {event}")
        self.state, self.event = state, event


QUEUED, PENDING, RUNNING = State.QUEUED, State.PENDING, State.RUNNING
OPEN = frozenset({QUEUED, PENDING, RUNNING})  # the states that may hold the lock (or wait for it)
FINISHED = frozenset(set(State) - OPEN)

_WAITING = {Event.REJECT: State.REJECTED, Event.WITHDRAW: State.WITHDRAWN, Event.CANCEL: State.CANCELLED,
            Event.SUPERSEDE: State.SUPERSEDED}
MOVES: dict[State, dict[Event, State]] = {
    QUEUED: {Event.OPEN: PENDING, **_WAITING},
    PENDING: {Event.APPROVE: RUNNING, Event.EXPIRE: State.EXPIRED, **_WAITING},
    RUNNING: {Event.SUCCEED: State.SUCCEEDED, Event.FAIL: State.FAILED, Event.SUPERSEDE: State.SUPERSEDED},
}


def transition(state: State, event: Event) -> State:
    """The state ``event`` moves ``state`` to; raises :class:`IllegalMove` when it does not apply."""
    to = MOVES.get(State(state), {}).get(Event(event))
    if to is None:
        raise IllegalMove(State(state), Event(event))
    return to


def allowed(state: State, event: Event) -> bool:
    """Whether ``event`` applies to ``state``."""
    return Event(event) in MOVES.get(State(state), {})
