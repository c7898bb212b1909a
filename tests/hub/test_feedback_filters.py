"""Feedback filters on fields the caller does not read in clear are refused: which rows
match ``product: "X"`` would tell a caller the product it is shown only masked (CHECKLIST:
property-level exposure through filters), as customer filters already are."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hub import feedback, sharing
from hub.access import PolicyRules, access
from hub.db import Database
from hub.errors import BadInputError
from hub.feedback import FeedbackFilter
from policies import parse
from tests.conftest import SECRET, make_org
from tests.hub.factories import make_customer, make_feedback

pytestmark = pytest.mark.db

POLICY = """
rules:
  - name: distributors-feedback
    subjects: [{kind: distributor}]
    resource: Feedback
    rows: {organization: {eq: $subject.org}}
    read:
      visible: [id, text, kind, created_at]
      masked: {product: redact}
"""


@pytest.fixture
def policy() -> Iterator[None]:
    saved = access.rules
    access.rules = PolicyRules(
        98, parse(POLICY), sharing.operator_guardrails(), pseudonym_secret=SECRET.encode()
    )
    yield
    access.rules = saved


async def test_a_filter_on_a_masked_field_is_refused_and_one_in_clear_is_not(
    db: Database, policy: None
) -> None:
    org = await make_org(db, "distributor")
    customer = await make_customer(db, consent_share_with_partners=True)
    await make_feedback(db, customer, org, product="secret-sku", kind="praise")
    await make_feedback(db, customer, org, product="other-sku", kind="bug")
    principal = sharing.principal_for(org)

    async def texts(flt: FeedbackFilter) -> int:
        async with db.session() as session:
            return await feedback.count_feedback(session, principal, flt)

    # The product is shown redacted: whether "secret-sku" matches is not the caller's to
    # learn, by a page or by a count.
    for flt in (FeedbackFilter(product="secret-sku"), FeedbackFilter(product="x", kind="bug")):
        with pytest.raises(BadInputError, match="this filter is not available"):
            await texts(flt)
        async with db.session() as session:
            with pytest.raises(BadInputError):
                await feedback.list_feedback(
                    session, principal, flt=flt, first=10, after=None, default_size=10, max_size=10
                )
    # A field it reads in clear filters as asked.
    assert await texts(FeedbackFilter(kind="bug")) == 1
    assert await texts(FeedbackFilter()) == 2
