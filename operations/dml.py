"""What an UPDATE or DELETE did."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, Delete, Update
from sqlalchemy.orm import Session


def changed_rows(session: Session, statement: Update | Delete) -> int:
    """How many rows the statement changed (its claim was won, or lost to another process)."""
    # Session.execute is typed as giving a plain Result for any statement; an UPDATE or DELETE
    # gives a CursorResult, which has the count.
    return cast(CursorResult[Any], session.execute(statement)).rowcount
