"""Dunning policy validation, caps and the JSON-like dict form."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dunwell.domain.policy import (
    MAX_ATTEMPTS_CAP,
    MAX_DAYS_CAP,
    FinalAction,
    InvoiceOutcome,
    Policy,
    PolicyError,
    Step,
    SubscriptionAction,
    default_policy,
    policy_from_dict,
    policy_to_dict,
)
from dunwell.domain.states import Collection


def email(day: int) -> Step:
    return Step(day=day, email_template="payment_declined")


def policy(**fields: Any) -> Policy:
    """An automatic policy with one email step, changed by ``fields``."""
    base: dict[str, Any] = {"steps": (email(1),)}
    return Policy(**{**base, **fields})


# --- validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        pytest.param({"retry_interval_hours": -1}, "retry_interval_hours", id="negative interval"),
        pytest.param(
            {"retry_interval_hours": MAX_DAYS_CAP * 24 + 1},
            "retry_interval_hours",
            id="an interval longer than 60 days",
        ),
        pytest.param({"max_attempts": 0}, "max_attempts", id="zero attempts"),
        pytest.param({"max_attempts": MAX_ATTEMPTS_CAP + 1}, "max_attempts", id="21 attempts"),
        pytest.param({"final_day": 0}, "final_day", id="final day 0"),
        pytest.param({"final_day": MAX_DAYS_CAP + 1}, "final_day", id="final day 61"),
        pytest.param(
            {"final_day": 10, "steps": (email(1), email(11))},
            "steps[1].day",
            id="a step after the final day",
        ),
        pytest.param({"steps": (email(0),)}, "steps[0].day", id="a step on day 0"),
        pytest.param(
            {"steps": (email(3), email(2), email(3))},
            "steps[2].day",
            id="the same day twice names the second one as given",
        ),
        pytest.param({"steps": (email(1), Step(day=2))}, "steps[1]", id="a step that does nothing"),
        pytest.param(
            {"kind": Collection.MANUAL, "steps": (Step(day=1, retry=True),)},
            "steps[0].retry",
            id="a retry step on a manual policy",
        ),
        pytest.param(
            {"final": FinalAction(SubscriptionAction.DOWNGRADE)},
            "final.downgrade_plan",
            id="a downgrade without a plan",
        ),
        pytest.param(
            {"final": FinalAction(bcc_merchant=True)},
            "final.bcc_merchant",
            id="a bcc to the merchant without a final email",
        ),
    ],
)
def test_an_invalid_policy_names_the_field_at_fault(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(PolicyError) as raised:
        policy(**fields)
    assert raised.value.field == field
    assert str(raised.value).startswith(f"{field}: ")


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"retry_interval_hours": 0}, id="no cadence at all"),
        pytest.param({"retry_interval_hours": MAX_DAYS_CAP * 24}, id="a 60-day interval"),
        pytest.param({"max_attempts": 1}, id="a single attempt"),
        pytest.param({"max_attempts": MAX_ATTEMPTS_CAP}, id="20 attempts"),
        pytest.param({"final_day": 1}, id="final day 1"),
        pytest.param({"final_day": MAX_DAYS_CAP, "steps": (email(60),)}, id="a step on day 60"),
        pytest.param({"steps": ()}, id="no steps"),
        pytest.param({"steps": (Step(day=2, webhook=True),)}, id="a webhook-only step"),
        pytest.param({"steps": (Step(day=2, sms_template="sms"),)}, id="an sms-only step"),
        pytest.param({"steps": (Step(day=2, retry=True),)}, id="a retry-only step"),
        pytest.param(
            {"final": FinalAction(SubscriptionAction.DOWNGRADE, downgrade_plan="basic")},
            id="a downgrade with a plan",
        ),
        pytest.param(
            {"final": FinalAction(email_template="final_notice", bcc_merchant=True)},
            id="a bcc with a final email",
        ),
        pytest.param(
            {"kind": Collection.MANUAL, "retry_interval_hours": 0, "max_attempts": 1},
            id="a manual policy with message steps",
        ),
    ],
)
def test_a_valid_policy_at_the_edge_of_its_limits_is_accepted(fields: dict[str, Any]) -> None:
    policy(**fields)


@pytest.mark.parametrize(
    "kind",
    [pytest.param(kind, id=f"the default {kind.value} policy") for kind in Collection],
)
def test_the_default_policies_are_valid_and_need_no_charges_for_manual(kind: Collection) -> None:
    made = default_policy(kind)
    assert made.kind is kind
    if kind is Collection.MANUAL:
        assert not any(step.retry for step in made.steps)


def test_steps_are_kept_sorted_by_day() -> None:
    made = policy(steps=(email(7), email(1), email(3)))
    assert [s.day for s in made.steps] == [1, 3, 7]
    assert made.step_on(3) == email(3)
    assert made.step_on(2) is None


def test_a_change_is_validated_like_a_new_policy() -> None:
    with pytest.raises(PolicyError) as raised:
        policy().with_changes(max_attempts=MAX_ATTEMPTS_CAP + 1)
    assert raised.value.field == "max_attempts"


def test_templates_used_names_each_place_a_template_appears() -> None:
    made = default_policy(Collection.AUTOMATIC)
    assert made.templates_used() == {
        "payment_declined": ["day 1 email", "day 1 sms", "day 3 email", "day 7 email", "day 7 sms"],
        "final_notice": ["day 14 email", "final email"],
    }


# --- the dict form ----------------------------------------------------------------


@pytest.mark.parametrize(
    "made",
    [
        pytest.param(default_policy(Collection.AUTOMATIC), id="the default automatic policy"),
        pytest.param(default_policy(Collection.MANUAL), id="the default manual policy"),
        pytest.param(Policy(), id="a policy with no steps"),
        pytest.param(
            Policy(
                retry_interval_hours=36,
                max_attempts=MAX_ATTEMPTS_CAP,
                final_day=MAX_DAYS_CAP,
                steps=(Step(day=60, retry=True, sms_template="s", webhook=True),),
                final=FinalAction(
                    SubscriptionAction.DOWNGRADE,
                    "basic",
                    InvoiceOutcome.LEAVE_PAST_DUE,
                    "final_notice",
                    bcc_merchant=True,
                ),
            ),
            id="a policy at its caps with a downgrade",
        ),
    ],
)
def test_a_policy_survives_the_round_trip_through_json(made: Policy) -> None:
    data = json.loads(json.dumps(policy_to_dict(made)))
    assert policy_from_dict(data) == made


def test_missing_fields_take_the_defaults() -> None:
    assert policy_from_dict({}) == Policy()


def test_empty_template_names_mean_no_template() -> None:
    made = policy_from_dict({"steps": [{"day": 1, "email_template": "", "webhook": True}]})
    assert made.steps == (Step(day=1, webhook=True),)


def good_step(**fields: Any) -> dict[str, Any]:
    return {"day": 2, "email_template": "payment_declined", **fields}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        pytest.param([], "policy", id="a list instead of an object names the policy"),
        pytest.param({"kind": "cash"}, "kind", id="an unknown kind"),
        pytest.param({"max_attempts": "8"}, "max_attempts", id="a number given as text"),
        pytest.param({"max_attempts": 8.0}, "max_attempts", id="a float for an integer"),
        pytest.param({"final_day": True}, "final_day", id="a boolean for an integer"),
        pytest.param(
            {"retry_interval_hours": None}, "retry_interval_hours", id="null for an integer"
        ),
        pytest.param({"steps": "day 1"}, "steps", id="steps given as text"),
        pytest.param({"steps": [good_step(), 3]}, "steps[1]", id="a step that is not an object"),
        pytest.param(
            {"steps": [good_step(), {"email_template": "x"}]},
            "steps[1].day",
            id="a step without a day",
        ),
        pytest.param(
            {"steps": [good_step(), good_step(day="3")]},
            "steps[1].day",
            id="a step day given as text",
        ),
        pytest.param(
            {"steps": [good_step(retry="yes")]}, "steps[0].retry", id="a step retry given as text"
        ),
        pytest.param(
            {"steps": [good_step(webhook=1)]}, "steps[0].webhook", id="a step webhook given as 1"
        ),
        pytest.param(
            {"steps": [good_step(email_template=5)]},
            "steps[0].email_template",
            id="a step email template that is a number",
        ),
        pytest.param(
            {"steps": [good_step(sms_template=["x"])]},
            "steps[0].sms_template",
            id="a step sms template that is a list",
        ),
        pytest.param({"final": "cancel"}, "final", id="a final action given as text"),
        pytest.param(
            {"final": {"subscription_action": "delete"}},
            "final.subscription_action",
            id="an unknown subscription action",
        ),
        pytest.param(
            {"final": {"invoice_outcome": "forgive"}},
            "final.invoice_outcome",
            id="an unknown invoice outcome",
        ),
        pytest.param(
            {"final": {"downgrade_plan": 3}}, "final.downgrade_plan", id="a plan that is a number"
        ),
        pytest.param(
            {"final": {"bcc_merchant": "true"}},
            "final.bcc_merchant",
            id="a bcc flag given as text",
        ),
        # Values of the right type are then validated like any policy.
        pytest.param({"max_attempts": 21}, "max_attempts", id="21 attempts from a dict"),
        pytest.param(
            {"steps": [good_step(day=1), good_step(day=1)]},
            "steps[1].day",
            id="a duplicate day from a dict",
        ),
        pytest.param(
            {"kind": "manual", "steps": [good_step(retry=True)]},
            "steps[0].retry",
            id="a retry step in a manual policy from a dict",
        ),
        pytest.param(
            {"final": {"subscription_action": "downgrade"}},
            "final.downgrade_plan",
            id="a downgrade without a plan from a dict",
        ),
    ],
)
def test_bad_policy_data_names_the_field_at_fault(data: Any, field: str) -> None:
    with pytest.raises(PolicyError) as raised:
        policy_from_dict(data)
    assert raised.value.field == field


@st.composite
def valid_policies(draw: st.DrawFn) -> Policy:
    kind = draw(st.sampled_from(Collection))
    final_day = draw(st.integers(1, MAX_DAYS_CAP))
    days = draw(st.lists(st.integers(1, final_day), unique=True, max_size=5))
    steps = tuple(
        Step(
            day=day,
            retry=kind is Collection.AUTOMATIC and draw(st.booleans()),
            email_template=draw(st.sampled_from([None, "payment_declined"])),
            sms_template=draw(st.sampled_from([None, "sms"])),
            webhook=True,
        )
        for day in days
    )
    action = draw(st.sampled_from(SubscriptionAction))
    final_email = draw(st.sampled_from([None, "final_notice"]))
    return Policy(
        kind=kind,
        retry_interval_hours=draw(st.integers(0, MAX_DAYS_CAP * 24)),
        max_attempts=draw(st.integers(1, MAX_ATTEMPTS_CAP)),
        final_day=final_day,
        steps=steps,
        final=FinalAction(
            subscription_action=action,
            downgrade_plan="basic" if action is SubscriptionAction.DOWNGRADE else None,
            invoice_outcome=draw(st.sampled_from(InvoiceOutcome)),
            email_template=final_email,
            bcc_merchant=final_email is not None and draw(st.booleans()),
        ),
    )


@given(valid_policies())
def test_any_valid_policy_survives_the_round_trip_through_json(made: Policy) -> None:
    assert policy_from_dict(json.loads(json.dumps(policy_to_dict(made)))) == made


@pytest.mark.parametrize(
    ("data", "field"),
    [
        pytest.param({"final": []}, "final", id="an empty list for the final action"),
        pytest.param({"final": False}, "final", id="false for the final action"),
        pytest.param({"final": ""}, "final", id="empty text for the final action"),
        pytest.param({"final": 0}, "final", id="zero for the final action"),
        pytest.param({"steps": {}}, "steps", id="an empty object for the steps"),
        pytest.param({"steps": ""}, "steps", id="empty text for the steps"),
        pytest.param({"steps": 0}, "steps", id="zero for the steps"),
        pytest.param({"steps": False}, "steps", id="false for the steps"),
    ],
)
def test_an_empty_value_of_the_wrong_type_is_refused_not_read_as_the_default(
    data: dict[str, Any], field: str
) -> None:
    # Read as omitted, "final": [] would quietly become cancel-and-write-off.
    with pytest.raises(PolicyError) as raised:
        policy_from_dict(data)
    assert raised.value.field == field


def test_null_steps_and_final_still_mean_omitted() -> None:
    assert policy_from_dict({"steps": None, "final": None}) == Policy()


@pytest.mark.parametrize(
    "action", [a for a in SubscriptionAction if a is not SubscriptionAction.DOWNGRADE]
)
def test_a_downgrade_plan_left_beside_another_action_is_dropped(
    action: SubscriptionAction,
) -> None:
    # The worker ignores it; kept, it read "cancel to basic" in the simulator
    # and in an invoice's dunning status.
    made = policy(final=FinalAction(action, downgrade_plan="basic"))
    assert made.final == FinalAction(action)
    data = {"final": {"subscription_action": action.value, "downgrade_plan": "basic"}}
    assert policy_to_dict(policy_from_dict(data))["final"]["downgrade_plan"] is None
