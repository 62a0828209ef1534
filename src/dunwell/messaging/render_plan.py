"""Remembering renders of a template, with the customer's own words left as holes.

A dunning run renders the same few templates for thousands of customers,
and python-liquid walks the whole parse tree (filters, Babel formatting,
conditions) for each one. Yet most of what changes from one customer to the
next is printed as is: a first name, a billing link, the last four digits
of a card. :class:`RenderPlan` reads a parsed template once and sorts every
variable path it uses:

* **printed** paths, used only as ``{{ path }}`` or ``{{ path | default:
  "literal" }}`` (and perhaps tested with ``{% if path %}``): when the value
  is a non-empty string, the output only contains it, escaped as Liquid
  escapes it. The render is done once with a placeholder there, and each
  message fills in its own value. A path is only printed if nothing else
  can see its value: no longer path reads through it, and no shorter path
  holding it (``customer`` for ``customer.first_name``) is used beyond a
  truth test, be it printed whole, filtered, compared or read with
  ``.size``, ``.first`` or ``.last``;
* **tested** paths, used only as a condition (``{% if card %}``): only
  whether the value is truthy changes the output;
* every other path (a filter's input or argument, a comparison): its whole
  value changes the output.

A render is then a pure function of the locale, the truthiness of tested
paths and the values of the others; those form the key of a small cache of
rendered outputs with holes. A template this analysis does not understand
(loops, ``assign``, computed indexes, unknown tags) gets no plan and is
rendered in full every time, as are renders whose values cannot be keyed
safely. The output is the same, character for character, either way.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from liquid import BoundTemplate, RenderContext
from liquid.ast import BlockNode, ConditionalBlockNode, Node
from liquid.builtin.content import ContentNode
from liquid.builtin.expressions.filtered import FilteredExpression
from liquid.builtin.expressions.logical import (
    BooleanExpression,
    LogicalAndExpression,
    LogicalNotExpression,
    LogicalOrExpression,
)
from liquid.builtin.expressions.path import Path
from liquid.builtin.expressions.primitive import StringLiteral
from liquid.builtin.output import OutputNode
from liquid.builtin.tags.comment_tag import CommentNode
from liquid.builtin.tags.doc_tag import DocNode
from liquid.builtin.tags.echo_tag import EchoNode
from liquid.builtin.tags.if_tag import IfNode
from liquid.builtin.tags.inline_comment_tag import InlineCommentNode
from liquid.builtin.tags.unless_tag import UnlessNode
from liquid.expression import Expression
from liquid.stringify import to_liquid_string

__all__ = ["RenderPlan"]

#: Distinct renders kept per template part. Keys are mostly amounts, dates
#: and product names, so a few hundred cover a site's whole run.
CACHE_SIZE = 512
#: Characters of remembered output kept per template part: a site's own HTML
#: can render to 250 KB, and 512 of those would be over 100 MB per part.
CACHE_CHARS = 2_000_000

# Placeholders carry a random tag per process: no value or filter output
# can forge one, so splitting a render on them is unambiguous.
_TAG = secrets.token_hex(8)
_HOLE = re.compile(f"\x00{_TAG}(\\d+)\x00")

_PLAIN_NODES = (BlockNode, ContentNode, CommentNode, InlineCommentNode, DocNode)
_CONDITION_NODES = (IfNode, UnlessNode, ConditionalBlockNode)
_OUTPUT_NODES = (OutputNode, EchoNode)

PRINTED, TESTED, WHOLE = "printed", "tested", "whole"
#: Liquid properties of any value: a path through one reads its whole parent.
_PROPERTIES = frozenset({"size", "first", "last"})
_MISSING = object()


class _Unkeyable(Exception):
    """This render's values cannot be keyed safely: render it in full."""


@dataclass(frozen=True)
class _Probe:
    path: tuple[str, ...]
    use: str


class RenderPlan:
    """The paths a template part reads, and its remembered renders."""

    def __init__(self, probes: list[_Probe], autoescape: bool) -> None:
        self._probes = probes
        self._autoescape = autoescape
        # Parts are shared by the server's threads. Reading a dict is atomic,
        # so lookups take no lock; every change (insert, evict, the size
        # count) happens under it, so two threads never evict the same key.
        self._cache: dict[tuple[Any, ...], tuple[str | int, ...]] = {}
        self._chars = 0
        self._lock = threading.Lock()

    @classmethod
    def of(cls, template: BoundTemplate) -> RenderPlan | None:
        """The plan of a parsed template, or None when it must always be rendered in full."""
        uses: dict[tuple[str, ...], set[str]] = {}
        try:
            static = RenderContext(template)
            for node in template.nodes:
                _visit(node, static, uses)
        except _Unkeyable:
            return None
        probes = [_Probe(path, _use_of(path, kinds, uses)) for path, kinds in uses.items()]
        return cls(probes, template.env.autoescape)

    def render(
        self,
        context: Mapping[str, Any],
        locale: str,
        limit: int,
        full: Callable[[Mapping[str, Any]], str],
    ) -> str:
        """What ``full(context)`` returns, from the cache when the key was seen.

        ``full`` renders a context in full and raises for a bad template;
        ``limit`` is the part's output cap in UTF-8 bytes, which ``full``
        enforces: a filled-in render over it is rendered in full, to fail
        exactly as before.
        """
        try:
            key, fills = self._key(context, locale)
        except _Unkeyable:
            return full(context)
        pieces = self._cache.get(key)
        if pieces is None:
            try:
                rendered = full(self._with_holes(context, fills))
            except Exception:
                return full(context)  # the error the real values give, if any
            pieces = self._remember(key, rendered)
        text = "".join([p if isinstance(p, str) else fills[p] for p in pieces])
        if len(text) * 4 > limit and len(text.encode("utf-8")) > limit:
            return full(context)
        return text

    def _key(self, context: Mapping[str, Any], locale: str) -> tuple[tuple[Any, ...], list[str]]:
        """The cache key of a render, and the text to put in each hole ("": no hole)."""
        key: list[Any] = [locale]
        fills: list[str] = []
        for probe in self._probes:
            value = _resolve(context, probe.path)
            if probe.use == PRINTED and type(value) is str and value:
                key.append(PRINTED)
                fills.append(to_liquid_string(value, True) if self._autoescape else value)
                continue
            fills.append("")
            if probe.use == TESTED and type(value) in _TESTABLE:
                key.append(value is not None and value is not False)
            else:
                key.append(_freeze(value))
        return tuple(key), fills

    def _with_holes(self, context: Mapping[str, Any], fills: list[str]) -> dict[str, Any]:
        """A copy of ``context`` with a placeholder at every path to fill in."""
        copy = dict(context)
        for index, (probe, fill) in enumerate(zip(self._probes, fills, strict=True)):
            if not fill:
                continue
            parent = copy
            for segment in probe.path[:-1]:
                parent[segment] = dict(parent[segment])
                parent = parent[segment]
            parent[probe.path[-1]] = f"\x00{_TAG}{index}\x00"
        return copy

    def _remember(self, key: tuple[Any, ...], rendered: str) -> tuple[str | int, ...]:
        # split() alternates plain text and the captured hole numbers.
        parts = _HOLE.split(rendered)
        pieces = tuple(int(p) if i % 2 else p for i, p in enumerate(parts) if p or i % 2)
        size = _chars(pieces)
        if size > CACHE_CHARS:
            return pieces  # would evict everything else for one render
        with self._lock:
            if key in self._cache:  # another thread rendered it meanwhile
                return self._cache[key]
            while self._cache and (
                len(self._cache) >= CACHE_SIZE or self._chars + size > CACHE_CHARS
            ):
                self._chars -= _chars(self._cache.pop(next(iter(self._cache))))  # the oldest
            self._cache[key] = pieces
            self._chars += size
        return pieces


def _chars(pieces: tuple[str | int, ...]) -> int:
    return sum(len(p) for p in pieces if isinstance(p, str))


def _use_of(path: tuple[str, ...], kinds: set[str], uses: dict[tuple[str, ...], set[str]]) -> str:
    if kinds <= {TESTED}:
        return TESTED
    if kinds <= {PRINTED, TESTED} and not _seen_elsewhere(path, uses):
        return PRINTED
    return WHOLE


def _seen_elsewhere(path: tuple[str, ...], uses: dict[tuple[str, ...], set[str]]) -> bool:
    """Whether another use can see this path's value, so a placeholder there would show.

    A longer path reads through it (``name.size``); a shorter one holds it,
    and anything but a truth test of that (printing it whole, a filter, a
    comparison) reads every value inside. A truth test is safe: a mapping
    stays truthy with a placeholder in it.
    """
    for other, kinds in uses.items():
        if other == path:
            continue
        if other[: len(path)] == path:
            return True
        if path[: len(other)] == other and not kinds <= {TESTED}:
            return True
    return False


# -- reading the template ------------------------------------------------------


def _visit(node: Node, static: RenderContext, uses: dict[tuple[str, ...], set[str]]) -> None:
    if type(node) in _OUTPUT_NODES:
        assert isinstance(node, OutputNode)  # EchoNode is one too
        _output(node.expression, uses)
    elif type(node) in _CONDITION_NODES:
        for expression in node.expressions():
            _condition(expression, uses)
    elif type(node) not in _PLAIN_NODES:
        raise _Unkeyable(type(node).__name__)
    for child in node.children(static, include_partials=False):
        _visit(child, static, uses)


def _output(expression: Expression, uses: dict[tuple[str, ...], set[str]]) -> None:
    if isinstance(expression, FilteredExpression) and isinstance(expression.left, Path):
        filters = expression.filters or []
        plain = not filters or (len(filters) == 1 and _literal_default(filters[0]))
        if plain:
            _use(expression.left, PRINTED, uses)
            return
    _whole(expression, uses)


def _literal_default(filter_: Any) -> bool:
    """``default: "text"``: a non-empty string passes through it unchanged."""
    args = filter_.args
    return (
        filter_.name == "default"
        and len(args) == 1
        and type(args[0]).__name__ == "PositionalArgument"
        and isinstance(args[0].value, StringLiteral)
    )


def _condition(expression: Expression, uses: dict[tuple[str, ...], set[str]]) -> None:
    if isinstance(expression, BooleanExpression):
        _condition(expression.expression, uses)
    elif isinstance(expression, (LogicalAndExpression, LogicalOrExpression)):
        _condition(expression.left, uses)
        _condition(expression.right, uses)
    elif isinstance(expression, LogicalNotExpression):
        _condition(expression.right, uses)
    elif isinstance(expression, Path):
        _use(expression, TESTED, uses)
    else:
        _whole(expression, uses)


def _whole(expression: Expression, uses: dict[tuple[str, ...], set[str]]) -> None:
    if isinstance(expression, Path):
        _use(expression, WHOLE, uses)
        return
    for child in expression.children():
        _whole(child, uses)


def _use(path: Path, kind: str, uses: dict[tuple[str, ...], set[str]]) -> None:
    segments = path.path
    if not segments or not all(isinstance(s, str) for s in segments):
        raise _Unkeyable(str(path))  # a computed or numeric index
    names = tuple(str(s) for s in segments)
    uses.setdefault(names, set()).add(kind)
    # ``customer.first`` or ``customer.size`` sees all of ``customer``, the
    # values of its siblings included (a mapping's first item, its length).
    for depth in range(1, len(names)):
        if names[depth] in _PROPERTIES:
            uses.setdefault(names[:depth], set()).add(WHOLE)


# -- keying a render -----------------------------------------------------------

# Python equates True with 1 and 0.0 with -0.0, which Liquid prints
# differently: values are keyed with their type, and floats, decimals and
# datetimes (equal across zones) are not keyed at all.
_SCALARS = (int, bool, type(None), date)
#: Values whose Liquid truthiness is Python's ``is not None and is not False``.
_TESTABLE = frozenset({str, dict, list, int, bool, type(None), date})


@dataclass(frozen=True)
class _Beyond:
    """A path that goes on past a non-mapping (``name.size``): keyed on that whole value."""

    depth: int
    value: Any


def _resolve(context: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The value at ``path``, or a stand-in that keys everything the path can see."""
    head = path[0]
    if head not in context:
        raise _Unkeyable(head)  # Liquid's own names (now, today) change by themselves
    value = context[head]
    for depth, segment in enumerate(path[1:], 1):
        if type(value) is dict and segment in value:
            value = value[segment]
        elif type(value) is dict and segment not in ("size", "first", "last"):
            return _MISSING
        else:
            return _Beyond(depth, _freeze(value))
    return value


def _freeze(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is _Beyond or value is _MISSING:
        return value
    if kind is dict:
        return (dict, tuple((k, _freeze(v)) for k, v in value.items()))
    if kind is list or kind is tuple:
        return (list, tuple(_freeze(v) for v in value))
    if kind in _SCALARS:
        return (kind, value)
    raise _Unkeyable(kind.__name__)
