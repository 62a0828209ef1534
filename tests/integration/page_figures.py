"""Reading the figures a dashboard page shows, as a person would read them."""

from __future__ import annotations

import re
from html import unescape

_STAT = re.compile(
    r'<div class="stat"><dt>(.*?)</dt><dd>(.*?)</dd>(?:<dd class="hint">(.*?)</dd>)?</div>', re.S
)
_ROW = re.compile(r"<tr[^>]*>(.*?)</tr>", re.S)
_CELL = re.compile(r"<t[dh][^>]*>(.*?)</t[dh]>", re.S)


def stats(html: str) -> dict[str, tuple[str, str]]:
    """Each stat's label -> (value, hint)."""
    return {
        unescape(label): (unescape(value).strip(), unescape(hint or "").strip())
        for label, value, hint in _STAT.findall(html)
    }


def table(html: str, table_id: str) -> list[list[str]]:
    """The rows (header included) of the table with this id, as cell texts."""
    found = re.search(rf'<table id="{table_id}">(.*?)</table>', html, re.S)
    assert found, f"no table {table_id}"
    return [
        [unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in _CELL.findall(row)]
        for row in _ROW.findall(found.group(1))
    ]
