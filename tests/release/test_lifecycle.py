"""A release's one lifecycle: the pure transition from (state, event) to state, and the moves it refuses."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.core.times import iso
from bot.release.actions import Change
from bot.release.lifecycle import FINISHED, MOVES, Event, IllegalMove, State, allowed, transition
from bot.release.record import Record

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("state, event, to", [
    (State.QUEUED, Event.OPEN, State.PENDING),
    (State.PENDING, Event.APPROVE, State.RUNNING),
    (State.RUNNING, Event.SUCCEED, State.SUCCEEDED),
    (State.RUNNING, Event.FAIL, State.FAILED),
    (State.PENDING, Event.REJECT, State.REJECTED),
    (State.QUEUED, Event.REJECT, State.REJECTED),
    (State.PENDING, Event.WITHDRAW, State.WITHDRAWN),
    (State.QUEUED, Event.WITHDRAW, State.WITHDRAWN),
    (State.PENDING, Event.EXPIRE, State.EXPIRED),
    (State.QUEUED, Event.CANCEL, State.CANCELLED),
    (State.PENDING, Event.CANCEL, State.CANCELLED),
    (State.QUEUED, Event.SUPERSEDE, State.SUPERSEDED),
    (State.PENDING, Event.SUPERSEDE, State.SUPERSEDED),
    (State.RUNNING, Event.SUPERSEDE, State.SUPERSEDED),
])
def test_each_legal_move(state: State, event: Event, to: State) -> None:
    assert transition(state, event) is to and allowed(state, event)


@pytest.mark.parametrize("state, event", [
    (State.QUEUED, Event.APPROVE),  # its approval is not open yet
    (State.PENDING, Event.SUCCEED),  # never ran
    (State.RUNNING, Event.REJECT),  # approved already
    (State.RUNNING, Event.WITHDRAW),
    (State.RUNNING, Event.EXPIRE),
    (State.RUNNING, Event.CANCEL),
    (State.QUEUED, Event.EXPIRE),  # its expiry counts from when it opens
    (State.PENDING, Event.OPEN),
])
def test_illegal_moves_are_refused(state: State, event: Event) -> None:
    assert not allowed(state, event)
    with pytest.raises(IllegalMove, match=f"a {state} release cannot {event}"):
        transition(state, event)


@pytest.mark.parametrize("state", sorted(FINISHED))
def test_a_finished_release_never_moves(state: State) -> None:
    assert state not in MOVES
    for event in Event:
        assert not allowed(state, event)
        with pytest.raises(IllegalMove):
            transition(state, event)


def test_every_state_but_queued_is_reached_and_every_open_state_can_end() -> None:
    reached = {to for moves in MOVES.values() for to in moves.values()}
    assert reached == set(State) - {State.QUEUED}
    assert all(any(to in FINISHED for to in MOVES[s].values()) for s in (State.QUEUED, State.PENDING, State.RUNNING))


def _record() -> Record:
    change = Change(command="deploy", action="deploy", verb="Deploy", summary="helloworld: v1 → v2")
    return Record(id="abc1234567", change=change, requester="U1", channel="C1", created="", expires="",
                  state=State.QUEUED)


def test_a_record_moves_only_by_its_lifecycle_and_keeps_its_times() -> None:
    record = _record()
    record.move(Event.OPEN, NOW)
    record.move(Event.APPROVE, NOW)
    assert record.state is State.RUNNING and record.decided == iso(NOW) and not record.finished
    with pytest.raises(IllegalMove):
        record.move(Event.WITHDRAW, NOW)
    assert record.state is State.RUNNING  # refused: nothing changed
    record.move(Event.SUCCEED, NOW, "helloworld runs v2")
    assert (record.state, record.finished, record.headline) == (State.SUCCEEDED, iso(NOW), "helloworld runs v2")


def test_a_record_round_trips_through_its_stored_form() -> None:
    record = _record()
    record.move(Event.OPEN, NOW)
    again = Record.from_json(record.to_json())
    assert again == record and again.state is State.PENDING
