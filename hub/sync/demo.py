"""The demo's inbound connector: a support desk's ticket export (a folder of JSONL files)
read as the support department's feedback (``hub demo`` registers it; ``hub sync run
support-desk`` runs it)."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub.models import Customer
from hub.sync.config import parse_spec, save_connector

NAME = "support-desk"
ORGANIZATION = "support"
MAPPING: dict[str, Any] = {
    "external_id": "ticket_id",
    "customer_email": {
        "from": "requester.email",
        "transforms": ["trim", "lower"],
        "required": True,
    },
    "channel": {"from": "via", "map": {"web": "website", "mail": "email"}, "default": "email"},
    "kind": {
        "from": "type",
        "transforms": ["trim", "lower"],
        "map": {"incident": "complaint", "problem": "bug", "kudos": "praise", "idea": "suggestion"},
        "default": "question",
    },
    "text": {"from": "description", "transforms": ["trim"], "required": True},
    "scale": {"from": "satisfaction.scale", "transforms": ["lower"]},
    "score": "satisfaction.score",
    "product": "product",
    "tags": "tags",
    "createdAt": {"from": "created_at", "date": "iso"},
}
_TICKETS = (
    ("incident", "mail", "The kettle stopped heating after two weeks.", "kettle"),
    ("kudos", "web", "Thanks for the quick replacement, great service!", None),
    ("problem", "chat", "The app shows the wrong delivery date.", None),
    ("idea", "web", "Please offer a longer warranty for the pans.", "pan"),
    ("question", "mail", "Can I change the delivery address of my order?", None),
    ("incident", "phone", "Received a damaged box, two plates broken.", "plates"),
)


def _tickets(emails: list[str], count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    start = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    tickets = []
    for n in range(count):
        kind, via, text, product = rng.choice(_TICKETS)
        ticket: dict[str, Any] = {
            "ticket_id": f"SD-{10_000 + n}",
            "requester": {
                "email": rng.choice(emails).upper() if n % 7 == 0 else rng.choice(emails)
            },
            "via": via,
            "type": kind.title() if n % 3 == 0 else kind,
            "description": text,
            "created_at": (start + timedelta(hours=5 * n)).isoformat(),
            "tags": ["demo"],
        }
        if product:
            ticket["product"] = product
        if n % 2 == 0:
            ticket["satisfaction"] = {"scale": "CSAT", "score": rng.randint(1, 5)}
        tickets.append(ticket)
    tickets.append(
        {
            "ticket_id": "SD-broken",
            "requester": {"email": "not-an-address"},
            "via": "mail",
            "type": "incident",
            "description": "A ticket whose requester is unreadable",
        }
    )
    return tickets


def _write(folder: Path, tickets: list[dict[str, Any]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(ticket) + "\n" for ticket in tickets)
    (folder / "2026-11-export.jsonl").write_text(lines, encoding="utf-8")


async def register_demo_connector(
    session: AsyncSession, folder: Path, *, count: int = 40, seed: int = 7
) -> str:
    """Write a sample export about customers of the database into ``folder`` (absolute)
    and define the ``support-desk`` connector over it (not run); its name."""
    rows = await session.execute(
        select(Customer)
        .where(col(Customer.email).is_not(None))
        .order_by(col(Customer.id))
        .limit(200)
    )
    emails = [c.email for c in rows.scalars() if c.email]
    if not emails:
        raise ValueError("the demo connector needs customers with an email")
    await asyncio.to_thread(_write, folder, _tickets(emails, count, seed))
    spec = parse_spec(
        {
            "name": NAME,
            "kind": "files",
            "resource": "feedback",
            "organization": ORGANIZATION,
            "schedule": "1m",
            "config": {"path": str(folder), "pattern": "*.jsonl*", "format": "jsonl"},
            "mapping": MAPPING,
        }
    )
    await save_connector(session, spec)
    return NAME


__all__ = ["MAPPING", "NAME", "register_demo_connector"]
