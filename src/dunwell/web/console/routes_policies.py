"""Dashboard: dunning policies, their versions with figures, the editor and the simulator.

Saving always writes a new version (see services/policies.py); invoices already
in dunning keep the version they entered with. The simulator writes nothing:
configuration readers (analytics included) may run it, only editors may save.
A real customer's schedule shows their name, email, invoice and time zone, so
only a role that may see customers may name one; the others simulate on a
hypothetical customer, as template previews use the sample data.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from dunwell.domain.policy import InvoiceOutcome, Policy, SubscriptionAction
from dunwell.domain.roles import Permission
from dunwell.domain.states import Collection
from dunwell.messaging.redact import redact_card_numbers
from dunwell.services.errors import InvalidInput, ServiceError
from dunwell.services.ids import parse_id
from dunwell.services.policies import PolicyVersion, list_versions, save_policy
from dunwell.services.policy_figures import version_figures
from dunwell.services.policy_simulator import (
    DEFAULT_REPLAY_DAYS,
    plan_for_customer,
    replay_history,
)
from dunwell.services.sites import site_now
from dunwell.services.templates import list_templates
from dunwell.web.console.desk import CSRF_HEADER, Desk, actor, viewer
from dunwell.web.console.policy_form import (
    FieldError,
    PolicyForm,
    draft_policy,
    field_error,
    form_from_policy,
    form_from_post,
    policy_data,
)

router = APIRouter(include_in_schema=False)
Viewer = Annotated[Desk, Depends(viewer(Permission.VIEW_CONFIGURATION))]
Editor = Annotated[Desk, Depends(actor(Permission.EDIT_POLICIES))]
Simulator = Annotated[Desk, Depends(actor(Permission.VIEW_CONFIGURATION))]
ACTIVE = "/dashboard/policies"


@router.get("/dashboard/policies")
def policies_page(desk: Viewer) -> Response:
    currency = desk.staff.site_currency
    with desk.app.connect() as conn:
        kinds = []
        for kind in Collection:
            versions = list_versions(conn, desk.site_id, kind)
            figures = version_figures(
                conn, desk.site_id, kind, versions=versions, currency=currency
            )
            kinds.append(
                {
                    "kind": kind.value,
                    "current": versions[-1],
                    "figures": figures[-1] if figures else None,
                    "versions": len(figures),
                }
            )
    return desk.page("policies.html", {"active": ACTIVE, "kinds": kinds, "missing": ""})


@router.get("/dashboard/policies/{kind}")
def policy_page(kind: str, desk: Viewer) -> Response:
    collection = _kind(kind)
    if collection is None:
        return _unknown_kind(desk, kind)
    with desk.app.connect() as conn:
        versions = list_versions(conn, desk.site_id, collection)
    policy = versions[-1].policy
    form = form_from_policy(policy)
    simulation = _simulation(desk, form, collection, policy)
    return _editor(desk, collection, form, simulation, versions=versions)


@router.post("/dashboard/policies/{kind}")
def save(kind: str, desk: Editor) -> Response:
    collection = _kind(kind)
    if collection is None:
        return _unknown_kind(desk, kind)
    form = form_from_post(desk.form)
    rows: list[int] = []
    try:
        data, rows = policy_data(form)
        with desk.app.begin() as conn:
            now = site_now(conn, desk.site_id, desk.app.clock)
            saved = save_policy(conn, desk.site_id, collection, data, now, form.note or None)
    except FieldError as error:
        return _editor(desk, collection, _shown(form), None, [error], 422)
    except InvalidInput as error:
        problem = field_error(error.field, error.message, rows)
        return _editor(desk, collection, _shown(form), None, [problem], 422)
    except ServiceError as error:
        return _editor(desk, collection, _shown(form), None, [error], 409)
    return desk.redirect(f"/dashboard/policies/{kind}", f"Saved version {saved.version}.")


def _shown(form: PolicyForm) -> PolicyForm:
    """The refused form as the page shows it again: a card number typed in the note is not."""
    return replace(form, note=redact_card_numbers(form.note))


@router.post("/dashboard/policies/{kind}/simulate")
def simulate(kind: str, desk: Simulator) -> Response:
    """The draft's simulation: a fragment for the live form, the whole page without JS."""
    collection = _kind(kind)
    if collection is None:
        return _unknown_kind(desk, kind)
    form = form_from_post(desk.form)
    simulation = _simulation(desk, form, collection)
    # console.js sends the session token as a header; a plain form post does not.
    if desk.request.headers.get(CSRF_HEADER):
        status = 422 if simulation["errors"] else 200
        return desk.fragment("_policy_simulation.html", {"sim": simulation}, status)
    return _editor(desk, collection, form, simulation)


def _simulation(
    desk: Desk, form: PolicyForm, kind: Collection, policy: Policy | None = None
) -> dict[str, Any]:
    """What the draft does to the chosen invoice and to past failures, or why it cannot.

    ``invalid`` names the form input at fault, to mark it on the whole page.
    """
    try:
        customer = _customer(desk, form.customer)
        draft = policy or draft_policy(form, kind)
        days = _replay_days(form.replay_days)
        with desk.app.connect() as conn:
            now = site_now(conn, desk.site_id, desk.app.clock)
            plan = plan_for_customer(conn, desk.site_id, draft, customer, now)
            history = replay_history(conn, desk.site_id, draft, now, days)
    except (FieldError, ServiceError) as error:
        return {"errors": [str(error)], "invalid": _inputs(error), "plan": None, "replay": None}
    return {"errors": [], "invalid": set(), "plan": plan, "replay": history}


def _inputs(error: Exception) -> set[str]:
    """The form input a simulation error is about, if it names one."""
    if isinstance(error, FieldError):
        return {error.name}
    return {error.field} if isinstance(error, InvalidInput) else set()


def _customer(desk: Desk, wanted: str) -> str:
    """The customer to simulate on: blank (a hypothetical one) for a role that cannot see them."""
    if wanted and not desk.can(Permission.VIEW_CUSTOMERS):
        # Reading policies is not reading customers: the schedule would show
        # the customer's name, email, invoice, decline and time zone.
        raise InvalidInput(
            "customer",
            "your role cannot see customers' data; leave it blank to simulate "
            "on a hypothetical customer",
        )
    return wanted


def _editor(
    desk: Desk,
    kind: Collection,
    form: PolicyForm,
    simulation: dict[str, Any] | None,
    errors: list[Exception] | None = None,
    status: int = 200,
    versions: list[PolicyVersion] | None = None,
) -> Response:
    """The editor page; ``versions`` when the caller has read them already."""
    currency = desk.staff.site_currency
    with desk.app.connect() as conn:
        if versions is None:
            versions = list_versions(conn, desk.site_id, kind)
        listed = version_figures(conn, desk.site_id, kind, versions=versions, currency=currency)
        figures = {f.version_id: f for f in listed}
        variants = list_templates(conn, desk.site_id)
    context = {
        "active": ACTIVE,
        "kind": kind.value,
        "form": form,
        "errors": [str(e) for e in errors or []],
        "invalid": {e.name for e in errors or [] if isinstance(e, FieldError)}
        | (simulation["invalid"] if simulation else set()),
        "history": [(v, figures.get(v.id)) for v in reversed(versions)],
        "next_version": versions[-1].version + 1,
        "emails": sorted({v.name for v in variants if v.channel == "email"}),
        "texts": sorted({v.name for v in variants if v.channel == "sms"}),
        "actions": [a.value for a in SubscriptionAction],
        "outcomes": [o.value for o in InvoiceOutcome],
        "sim": simulation,
        "can_save": desk.can(Permission.EDIT_POLICIES),
    }
    return desk.page("policy_edit.html", context, status)


def _replay_days(text: str) -> int:
    if not text:
        return DEFAULT_REPLAY_DAYS
    days = parse_id(text)
    if days is None:
        raise FieldError("replay_days", "replay days", "must be a whole number of days")
    return days


def _kind(kind: str) -> Collection | None:
    try:
        return Collection(kind)
    except ValueError:
        return None


def _unknown_kind(desk: Desk, kind: str) -> Response:
    message = f"There is no {kind!r} policy: choose automatic or manual."
    return desk.page("policies.html", {"active": ACTIVE, "kinds": [], "missing": message}, 404)
