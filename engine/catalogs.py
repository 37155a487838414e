"""What a `CatalogSource` (an Airbyte connector) needs kept between calls: each connection's
discovered catalog (its templates), and each extraction order's state (where its next read
resumes). Sources with fixed templates have neither: `connection_templates` answers their
`templates()`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol, TypeGuard

from sqlalchemy.orm import Session

from engine.context import Context
from sources.base import CatalogSource, ExtractionTemplate, Source
from storage.models import ConnectionCatalog, OrderState


@dataclass(frozen=True)
class CatalogSummary:
    streams: int
    discovered_at: datetime


class SourceWithCatalog(Source, CatalogSource, Protocol):
    """A Source that is also a CatalogSource, as every CatalogSource is."""


def is_catalog_source(source: Source) -> TypeGuard[SourceWithCatalog]:
    return isinstance(source, CatalogSource)


def save_catalog(ctx: Context, connection_id: int, catalog: Mapping[str, Any]) -> None:
    """Keeps what `discover` found (the account sync calls it)."""
    streams = catalog.get("streams")
    with ctx.db.begin() as session:
        row = session.get(ConnectionCatalog, connection_id, with_for_update=True)
        if row is None:
            row = ConnectionCatalog(connection_id=connection_id)
            session.add(row)
        row.catalog = dict(catalog)
        row.streams = len(streams) if isinstance(streams, list) else 0
        row.discovered_at = ctx.clock.now()


def catalog_summary(session: Session, connection_id: int) -> CatalogSummary | None:
    """How many streams the connection's last discovery found, and when (None: never)."""
    row = session.get(ConnectionCatalog, connection_id)
    return CatalogSummary(row.streams, row.discovered_at) if row is not None else None


def connection_catalog(ctx: Context, connection_id: int) -> dict[str, Any] | None:
    with ctx.db.read() as session:
        row = session.get(ConnectionCatalog, connection_id)
        return dict(row.catalog) if row is not None else None


def connection_templates(ctx: Context, source: Source, connection_id: int) -> tuple[ExtractionTemplate, ...]:
    """The templates a connection offers: its catalog's streams, or the source's fixed ones."""
    if not is_catalog_source(source):
        return source.templates()
    catalog = connection_catalog(ctx, connection_id)
    return source.catalog_templates(catalog) if catalog else ()


def order_template(template: ExtractionTemplate, key_fields: list[str] | tuple[str, ...] | None) -> ExtractionTemplate:
    """The template as an order extracts it: with the key fields the order chose, if any (for a
    template without a primary key of its own)."""
    if not key_fields or template.primary_key:
        return template
    return replace(template, primary_key=tuple(key_fields))


def saved_state(ctx: Context, order_id: int) -> Any:
    with ctx.db.read() as session:
        row = session.get(OrderState, order_id)
        return row.state if row is not None else None


def save_state(ctx: Context, order_id: int, run_id: int, state: Any) -> None:
    """Where the order's next read resumes: only once the rows before it are committed."""
    with ctx.db.begin() as session:
        row = session.get(OrderState, order_id, with_for_update=True)
        if row is None:
            row = OrderState(order_id=order_id)
            session.add(row)
        row.state, row.run_id, row.saved_at = state, run_id, ctx.clock.now()
