"""Activity: interactions and purchases, reached from their customer, and their writes."""

from schema.activity.mutations import ActivityMutations
from schema.areas import Area

AREA = Area(position=30, mutations=(ActivityMutations,))
