"""Contributions that are neither a customer edit nor a new activity record: which
partner serves a customer (operator only) and the customer's consent."""

from schema.areas import Area
from schema.contributions.mutations import ContributionMutations

AREA = Area(position=50, mutations=(ContributionMutations,))
