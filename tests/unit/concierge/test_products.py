"""Forgiving product matching that always answers with exact names."""

from __future__ import annotations

import pytest

from dunwell.concierge.normalize import normalize
from dunwell.concierge.products import Products, products_for, stem

SNACKS = (
    "Kettle Corn Bags (8ct)",
    "Pretzel Thins Sea Salt (10ct)",
    "Dried Mango Slices 8oz",
    "Cashew Clusters 6oz",
)
SUPPLEMENTS = (
    "Zinc Lozenges (60ct)",
    "Turmeric Curcumin (90ct)",
    "Ashwagandha Capsules (60ct)",
    "Vitamin C 1000mg (100ct)",
)
COFFEE = ("Dark Roast Coffee 12oz", "Decaf Coffee 12oz", "Ceramic Mug", "Pour-Over Filters (100ct)")
DOG = ("Lamb & Oatmeal Kibble 24lb", "Beef Jerky Dog Treats 10oz", "Hip & Joint Chews (60ct)")


def named(
    catalog: tuple[str, ...], text: str, items: tuple[str, ...] = ()
) -> list[tuple[str, ...]]:
    products = products_for(catalog, items)
    return [mention.names for mention in products.mentions(normalize(text))]


@pytest.mark.parametrize(
    ("catalog", "text", "expected"),
    [
        (COFFEE, "the decaf please", "Decaf Coffee 12oz"),
        (COFFEE, "add a MUG", "Ceramic Mug"),
        (COFFEE, "pourover filters", "Pour-Over Filters (100ct)"),
        (COFFEE, "pour over filters", "Pour-Over Filters (100ct)"),
        (SNACKS, "the kettle corn", "Kettle Corn Bags (8ct)"),
        (SNACKS, "mango slices", "Dried Mango Slices 8oz"),
        (SNACKS, "cashews", "Cashew Clusters 6oz"),
        (SUPPLEMENTS, "tumeric", "Turmeric Curcumin (90ct)"),
        (SUPPLEMENTS, "ashwaganda", "Ashwagandha Capsules (60ct)"),
        (SUPPLEMENTS, "vitamin c", "Vitamin C 1000mg (100ct)"),
        (SUPPLEMENTS, "Vitamins", "Vitamin C 1000mg (100ct)"),
        (DOG, "hip and joint chews", "Hip & Joint Chews (60ct)"),
        (DOG, "the dog treats", "Beef Jerky Dog Treats 10oz"),
        (DOG, "lamb & oatmeal", "Lamb & Oatmeal Kibble 24lb"),
    ],
)
def test_a_shortened_or_misspelt_name_finds_the_exact_product(
    catalog: tuple[str, ...], text: str, expected: str
) -> None:
    assert named(catalog, text) == [(expected,)]


def test_a_count_and_a_container_do_not_name_a_product_called_bags() -> None:
    assert named(SNACKS, "2 bags of dried mango") == [("Dried Mango Slices 8oz",)]


@pytest.mark.parametrize("text", ["my dog food order", "12oz", "a double please", "the bag", "c"])
def test_everyday_words_sizes_and_containers_alone_name_nothing(text: str) -> None:
    assert named(COFFEE + DOG, text) == []


def test_two_names_in_one_text_are_two_mentions() -> None:
    assert named(COFFEE, "swap the mug for the decaf") == [
        ("Ceramic Mug",),
        ("Decaf Coffee 12oz",),
    ]
    assert named(COFFEE, "mug and filters") == [
        ("Ceramic Mug",),
        ("Pour-Over Filters (100ct)",),
    ]


def test_a_word_shared_by_two_products_names_both() -> None:
    assert named(COFFEE, "my coffee") == [("Dark Roast Coffee 12oz", "Decaf Coffee 12oz")]


def test_a_shared_word_is_the_item_on_the_order_when_only_one_is() -> None:
    products = Products(COFFEE, ("Decaf Coffee 12oz",))
    [mention] = products.mentions("my coffee")
    assert products.item(mention) == "Decaf Coffee 12oz"


def test_between_equals_for_sale_prefers_one_not_yet_on_the_order() -> None:
    products = Products(COFFEE, ("Decaf Coffee 12oz",))
    [mention] = products.mentions("more coffee")
    assert products.for_sale(mention) == "Dark Roast Coffee 12oz"


def test_a_name_not_in_the_catalog_is_never_for_sale() -> None:
    products = Products(("Ceramic Mug",), ("Old Blend 1lb",))
    [mention] = products.mentions("old blend")
    assert products.for_sale(mention) is None
    assert products.item(mention) == "Old Blend 1lb"


def test_a_word_describing_the_next_name_is_not_a_mention_of_its_own() -> None:
    skincare = ("Gentle Foaming Cleanser 6oz", "Bamboo Face Cloths (3pk)")
    assert named(skincare, "the face wash cleanser") == [("Gentle Foaming Cleanser 6oz",)]


def test_the_only_item_is_known_only_when_there_is_exactly_one() -> None:
    assert Products(COFFEE, ("Ceramic Mug",)).only_item() == "Ceramic Mug"
    assert Products(COFFEE, ("Ceramic Mug", "Ceramic Mug")).only_item() == "Ceramic Mug"
    assert Products(COFFEE, ("Ceramic Mug", "Decaf Coffee 12oz")).only_item() is None
    assert Products(COFFEE, ()).only_item() is None


@pytest.mark.parametrize(
    ("word", "singular"),
    [
        ("razors", "razor"),
        ("boxes", "box"),
        ("berries", "berry"),
        ("glass", "glass"),
        ("bus", "bus"),
    ],
)
def test_plurals_are_folded_crudely_but_safely(word: str, singular: str) -> None:
    assert stem(word) == singular


def test_the_index_for_a_catalog_is_built_once() -> None:
    assert products_for(COFFEE, ()) is products_for(COFFEE, ())
