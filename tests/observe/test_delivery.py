"""Delivery metrics from fixed audit trails: each figure, an empty trail, a failure and its restore."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.observe import delivery
from bot.release.audit import Entry

END = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
N = 0


def at(days: float = 0, minutes: float = 0) -> datetime:
    """``days`` before END, plus ``minutes``."""
    return END - timedelta(days=days) + timedelta(minutes=minutes)


def change(verb: str, start: datetime, *, action: str = "", ends: str = "Succeeded", wait: float = 5,
           run: float = 10, facts: dict[str, Any] | None = None, approved: bool = True) -> list[Entry]:
    """The records of one request: Requested, Approved after ``wait`` min, its end ``run`` min later."""
    global N
    N += 1
    rid = f"{N:010x}"
    action = action or verb.lower()
    out = [Entry(at=start, reason=f"Hello{verb}Requested", verb=verb, phase="Requested", user="U1", summary="s",
                 request_id=rid, action=action)]
    if approved:
        out.append(Entry(at=start + timedelta(minutes=wait), reason=f"Hello{verb}Approved", verb=verb,
                         phase="Approved", user="U2", summary="s", request_id=rid, action=action))
        if ends:
            out.append(Entry(at=start + timedelta(minutes=wait + run), reason=f"Hello{verb}{ends}", verb=verb,
                             phase=ends, user="U2", summary="s", request_id=rid, action=action,
                             facts=dict(facts or {})))
    else:
        out.append(Entry(at=start + timedelta(minutes=wait), reason=f"Hello{verb}Rejected", verb=verb,
                         phase="Rejected", user="U2", summary="s", request_id=rid, action=action))
    return out


def test_an_empty_trail_has_no_figures() -> None:
    d = delivery.compute([], end=END, days=30)
    assert (d.deployments, d.changes, d.failures, d.failure_rate) == (0, 0, 0, None)
    assert d.restore == delivery.Median(None, 0) and d.lead == delivery.Median(None, 0)
    assert d.partial and d.covered_since is None
    assert len(d.daily) == 31 and not any(day.deployments for day in d.daily)
    words = delivery.figures(d)
    assert words["failure_rate"] == "–" and words["lead"] == "–" and words["restore"] == "no failures"


def test_deployment_frequency_counts_successful_deploys_and_promotions_in_the_range() -> None:
    entries = [
        *change("Deploy", at(2)), *change("Deploy", at(9)),
        *change("Canary", at(5), action="canary", facts={"image": "h:v3"}), *change("Promote", at(4)),
        *change("Canary", at(3), action="shift"),  # a weight shift is not a deployment
        *change("Deploy", at(1), ends="Failed"),  # nor a failed deploy
        *change("Deploy", at(0.5), approved=False),  # nor a rejected one
        *change("CertRenew", at(1)),  # nor a certificate
        *change("Deploy", at(40)),  # outside the range
    ]
    d = delivery.compute(entries, end=END, days=30)
    assert d.deployments == 3
    assert d.per_week == 3 * 7 / 30 and d.per_day == 3 / 30
    assert sum(day.deployments for day in d.daily) == 3
    assert next(day for day in d.daily if day.day == at(2).date()).deployments == 1
    assert not d.partial  # the trail reaches back 40 days
    assert delivery.compute(entries, end=END, days=7).deployments == 2


def test_request_to_live_is_the_median_from_request_to_success() -> None:
    entries = [*change("Deploy", at(3), wait=2, run=3), *change("Deploy", at(2), wait=5, run=10),
               *change("Promote", at(1), wait=20, run=40)]
    d = delivery.compute(entries, end=END, days=30)
    assert d.lead == delivery.Median(15 * 60, 3)  # 5, 15 and 60 minutes
    assert delivery.figures(d)["lead"] == "median 15m (3 deployments)"
    assert [round(s) for _, s in d.leads] == [300, 900, 3600]


def test_a_deploy_followed_by_a_rollback_failed_and_the_rollback_restored_it() -> None:
    deploy = change("Deploy", at(2), wait=1, run=4)  # live at +5 min
    rollback = change("Rollback", at(2, minutes=30), wait=2, run=6)  # asked at +30, back at +38
    good = change("Deploy", at(1))
    d = delivery.compute([*deploy, *rollback, *good], end=END, days=30)
    assert (d.changes, d.failures) == (2, 1)
    assert d.failure_rate == 0.5
    failed = next(o for o in d.outcomes if o.failed)
    assert failed.how == "rolled back" and failed.release.request_id == deploy[0].request_id
    assert d.restore == delivery.Median(8 * 60, 1)  # from the rollback's request to its success
    assert d.deployments == 2  # the rolled-back deploy still was one
    assert delivery.figures(d)["failure_rate"] == "50% (1 of 2 changes)"
    assert delivery.figures(d)["restore"] == "median 8m (1 restored)"


def test_a_rejected_rollback_request_is_no_failure() -> None:
    entries = [*change("Deploy", at(2)), *change("Rollback", at(2, minutes=30), approved=False)]
    d = delivery.compute(entries, end=END, days=30)
    assert (d.changes, d.failures) == (1, 0)


def test_a_failed_release_is_restored_by_the_next_success_of_its_track() -> None:
    failed = change("Deploy", at(3), wait=0, run=10, ends="Failed")  # failed at +10
    canary = change("Canary", at(3, minutes=20), action="canary", facts={"image": "h:v9"})  # other track
    fixed = change("Deploy", at(3, minutes=60), wait=5, run=5)  # live again at +70
    d = delivery.compute([*failed, *canary, *fixed], end=END, days=30)
    assert d.failures == 1 and d.changes == 3
    assert d.restore == delivery.Median(60 * 60, 1)
    assert d.unrestored == 0


def test_a_failure_with_nothing_after_it_is_not_restored_yet() -> None:
    d = delivery.compute(change("Deploy", at(1), ends="Failed"), end=END, days=30)
    assert (d.failures, d.unrestored, d.restore.count) == (1, 1, 0)
    assert "1 not restored yet" in delivery.figures(d)["restore"]


def test_what_the_bot_undid_itself_counts_as_a_failure_without_a_duration() -> None:
    entries = [*change("Canary", at(2), action="canary", ends="Failed", facts={"aborted": True, "image": "h:v2"}),
               *change("Deploy", at(1), ends="Failed", facts={"alert": "HelloworldErrorBudgetBurn",
                                                               "rolled_back": True})]
    d = delivery.compute(entries, end=END, days=30)
    assert (d.failures, d.restored_automatically, d.restore.count, d.unrestored) == (2, 2, 0, 0)
    assert {o.how for o in d.outcomes} == {"aborted by the bot", "rolled back by the bot"}
    assert "2 undone by the bot" in delivery.figures(d)["restore"]


def test_a_canary_aborted_by_a_person_failed_and_a_promoted_one_did_not() -> None:
    aborted = change("Canary", at(5), action="canary", facts={"image": "h:v2"})
    shift = change("Canary", at(5, minutes=30), action="shift")
    abort = change("Abort", at(5, minutes=60), wait=0, run=1)
    promoted = change("Canary", at(2), action="canary", facts={"image": "h:v3"})
    promote = change("Promote", at(1))
    d = delivery.compute([*aborted, *shift, *abort, *promoted, *promote], end=END, days=30)
    by_id = {o.release.request_id: o for o in d.outcomes}
    assert by_id[aborted[0].request_id].failed and by_id[aborted[0].request_id].how == "aborted"
    assert not by_id[promoted[0].request_id].failed
    assert d.restore == delivery.Median(60, 1)
    assert (d.changes, d.failures) == (3, 1)  # two canaries and the promotion; shifts and aborts are not changes


def test_a_deploy_superseded_by_a_rollback_in_its_bake_window_failed() -> None:
    deploy = change("Deploy", at(1), ends="Superseded", run=3)
    rollback = change("Rollback", at(1, minutes=8), wait=0, run=2)
    d = delivery.compute([*deploy, *rollback], end=END, days=30)
    assert (d.changes, d.failures, d.deployments) == (1, 1, 0)
    assert d.restore == delivery.Median(120, 1)


def test_records_from_before_the_action_was_kept_are_told_apart_by_their_facts() -> None:
    old = [Entry(at=e.at, reason=e.reason, verb=e.verb, phase=e.phase, user=e.user, summary=e.summary,
                 request_id=e.request_id, facts=e.facts)
           for e in (*change("Canary", at(2), facts={"image": "h:v2"}), *change("Canary", at(1), facts={}))]
    kinds = sorted(r.action for r in delivery.releases(old))
    assert kinds == ["canary", "shift"]


def test_the_digest_line_is_short() -> None:
    d = delivery.compute(change("Deploy", at(1)), end=END, days=7)
    line = delivery.summary_line(d)
    assert line.startswith("*Delivery, last 7 days:* 1 deployment (1.0/week)") and len(line) < 300


def test_locks_and_freezes_in_the_trail_are_not_changes() -> None:
    holds = [Entry(at=at(2), reason="HelloFreezeSet", verb="Freeze", phase="Set", user="U1", summary="froze",
                   request_id="freeze-1a2b3c4d", action="freeze"),
             Entry(at=at(1), reason="HelloLockLifted", verb="Lock", phase="Lifted", user="U1", summary="unlocked",
                   request_id="lock-5e6f7a8b", action="lock")]
    d = delivery.compute([*holds, *change("Deploy", at(3))], end=END, days=30)
    assert (d.deployments, d.changes, d.failures) == (1, 1, 0)


def test_with_several_services_a_rollback_undoes_only_its_own_services_change() -> None:
    from dataclasses import replace

    def of(service: str, environment: str, records: list[Entry]) -> list[Entry]:
        return [replace(e, service=service, environment=environment) for e in records]

    entries = [*of("greeter", "production", change("Deploy", at(3))),
               *of("helloworld", "production", change("Deploy", at(2))),
               *of("helloworld", "production", change("Rollback", at(1)))]
    d = delivery.compute(entries, end=END, days=30)
    assert (d.changes, d.failures) == (2, 1)  # helloworld's deploy was rolled back; greeter's was not
    assert [o.release.where for o in d.outcomes if o.failed] == [("helloworld", "production")]
