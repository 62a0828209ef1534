"""Two misreads about products, and their close variants.

1. Giving up an item for another named product ("I don't want the chicken
   anymore, send the lamb instead") is a swap however many items the order
   holds; it was read as removing the item once the order had several.
2. A product named in the current text wins over the one an earlier turn
   proposed: "yes and a catnip toy" while adding the salmon was awaiting a
   yes added the salmon and dropped the toy.
"""

from __future__ import annotations

from datetime import date

import pytest

from dunwell.concierge.dialogue import respond
from dunwell.concierge.intents import Awaiting, Intent
from dunwell.concierge.model import Context, Item, Order, Outcome, State
from dunwell.concierge.understanding import ParseRequest, understand
from dunwell.services.concierge_settings import ACTIONS
from tests.unit.concierge.conftest import DARK, DECAF, MUG, TODAY, Ask

PETS = (
    "Chicken & Rice Kibble 30lb",
    "Lamb & Rice Kibble 30lb",
    "Grain-Free Salmon Kibble 24lb",
    "Dental Chews (30ct)",
    "Catnip Toy",
    "Flea Collar",
)
CHICKEN, LAMB, SALMON, CHEWS, CATNIP_TOY, COLLAR = PETS
NEXT_ORDER = date(2026, 11, 29)

# -- 1. giving up one item for another ---------------------------------------------

ORDERS = [(CHICKEN,), (CHICKEN, CHEWS), (CHICKEN, CHEWS, COLLAR)]
CHICKEN_FOR_LAMB = [
    "I don't want the chicken anymore, send the lamb instead",
    "i dont want the chicken anymore send the lamb instead",
    "I don't want the chicken anymore, send the lamb",
    "I don't want the chicken, I want the lamb",
    "I don't need the chicken anymore, lamb instead please",
    "no more chicken, send lamb instead",
    "don't send the chicken anymore, send the lamb instead",
    "stop sending the chicken, send lamb instead",
    "skip the chicken and send the lamb instead",
    "remove the chicken and send the lamb instead",
    "my dog hates the chicken, try the lamb",
    "I'd rather have the lamb than the chicken",
    "send the lamb instead of the chicken",
    "instead of the chicken send the lamb",
    "lamb instead of chicken please",
    "the lamb rather than the chicken",
    "swap the chicken for the lamb",
    "replace the chicken with the lamb",
]


@pytest.mark.parametrize("items", ORDERS, ids=["one item", "two items", "three items"])
@pytest.mark.parametrize("text", CHICKEN_FOR_LAMB)
def test_giving_up_an_item_for_another_product_is_a_swap_however_many_items(
    ask: Ask, text: str, items: tuple[str, ...]
) -> None:
    understanding = ask(text, items=items, catalog=PETS)
    assert (understanding.intent, understanding.slots) == (
        Intent.SWAP_PRODUCT,
        {"from": CHICKEN, "to": LAMB},
    )
    assert understanding.confident


@pytest.mark.parametrize(
    ("text", "items", "catalog", "slots"),
    [
        (
            "I don't want the dental chews anymore, send a flea collar instead",
            (CHICKEN, CHEWS),
            PETS,
            {"from": CHEWS, "to": COLLAR},
        ),
        (
            "no more salmon kibble, switch me to the lamb",
            (SALMON, CHEWS),
            PETS,
            {"from": SALMON, "to": LAMB},
        ),
        (
            "I don't want the decaf anymore, send the dark roast instead",
            (DECAF, MUG),
            None,
            {"from": DECAF, "to": DARK},
        ),
        # The product coming in may already be on the order: "instead" still swaps.
        (
            "I don't want the chicken anymore, send the lamb instead",
            (CHICKEN, LAMB, CHEWS),
            PETS,
            {"from": CHICKEN, "to": LAMB},
        ),
    ],
)
def test_other_products_given_up_for_another_on_a_larger_order_are_swaps(
    ask: Ask,
    text: str,
    items: tuple[str, ...],
    catalog: tuple[str, ...] | None,
    slots: dict[str, str],
) -> None:
    understanding = ask(text, items=items, **({"catalog": catalog} if catalog else {}))
    assert (understanding.intent, understanding.slots) == (Intent.SWAP_PRODUCT, slots)


def test_giving_up_one_of_several_items_without_naming_another_still_removes_it(
    ask: Ask,
) -> None:
    for text in ("I don't want the chicken anymore", "skip the chicken this time"):
        understanding = ask(text, items=(CHICKEN, CHEWS), catalog=PETS)
        assert (understanding.intent, understanding.slots) == (
            Intent.CHANGE_QUANTITY,
            {"product": CHICKEN, "quantity": 0},
        )


# -- 2. the product named now wins over the one proposed before ----------------------

CONTEXT = Context(
    today=TODAY,
    company="Happy Paws",
    first_name="Ada",
    known_customer=True,
    order=Order(7, NEXT_ORDER, date(2026, 12, 29), (Item(70, CHICKEN, 1),), "$40.00"),
    debt=None,
    allowed_products=PETS,
    allowed_actions=frozenset(ACTIONS),
)


def converse(*texts: str) -> Outcome:
    """The concierge's answer to the last of ``texts``, each read in the state the last left."""
    state = State()
    items = tuple(item.name for item in CONTEXT.order.items) if CONTEXT.order else ()
    outcome = Outcome((), state)
    for text in texts:
        awaiting = Awaiting(state.awaiting) if state.awaiting else None
        request = ParseRequest(text, TODAY, NEXT_ORDER, PETS, items, awaiting)
        understanding = understand(request)
        outcome = respond(state, understanding.intent, understanding.slots, text, CONTEXT)
        state = outcome.state
    return outcome


def proposed_product(outcome: Outcome) -> object:
    proposal = outcome.state.proposal
    return None if proposal is None else proposal.params.get("product")


@pytest.mark.parametrize(
    "earlier",
    ["add the salmon kibble", "can I get a flea collar?", "swap the chicken for the lamb"],
)
@pytest.mark.parametrize(
    "text",
    ["add a catnip toy", "yes and a catnip toy", "ok and the catnip toy", "oh and a catnip toy"],
)
def test_adding_a_product_after_another_was_proposed_asks_about_the_one_named_now(
    earlier: str, text: str
) -> None:
    outcome = converse(earlier, text)
    assert outcome.action is None
    assert proposed_product(outcome) == CATNIP_TOY


@pytest.mark.parametrize(
    "text",
    [
        "please add a catnip toy and ship it now",
        "ok add a catnip toy and ship it now",
        "yes, the catnip toy",
        "sure, a catnip toy",
        "great, make it a catnip toy",
    ],
)
def test_a_yes_that_names_another_product_never_carries_out_the_earlier_proposal(
    text: str,
) -> None:
    outcome = converse("add the salmon kibble", text)
    assert outcome.action is None
    assert all(SALMON not in reply or "Catnip" in reply for reply in outcome.replies)


def test_a_yes_naming_the_proposed_product_still_carries_it_out() -> None:
    for text in ("yes", "yes, the salmon kibble", "yes please, my dog loves salmon"):
        outcome = converse("add the salmon kibble", text)
        assert outcome.action is not None
        assert outcome.action.params["product"] == SALMON


@pytest.mark.parametrize("awaiting", [None, Awaiting.CONFIRMATION])
def test_and_before_a_product_asks_for_it(ask: Ask, awaiting: Awaiting | None) -> None:
    for text in ("and a catnip toy", "yes and a catnip toy", "oh and 2 catnip toys"):
        understanding = ask(text, catalog=PETS, items=(CHICKEN,), awaiting=awaiting)
        quantity = 2 if "2" in text else 1
        assert (understanding.intent, understanding.slots) == (
            Intent.ADD_PRODUCT,
            {"product": CATNIP_TOY, "quantity": quantity},
        ), text


def test_a_yes_with_a_weak_request_naming_a_product_is_not_a_bare_yes(ask: Ask) -> None:
    understanding = ask(
        "please add a catnip toy and ship it now",
        catalog=PETS,
        items=(CHICKEN,),
        awaiting=Awaiting.CONFIRMATION,
    )
    assert understanding.intent is not Intent.CONFIRM
    assert not understanding.confident
