"""Parameter types shared by the commands."""

from __future__ import annotations

import click

from dunwell.services.ids import MAX_ID

#: A row's id: a whole number the database can hold. A longer number is a
#: usage error naming the argument, not an overflow deep in the driver.
ID = click.IntRange(min=1, max=MAX_ID)
