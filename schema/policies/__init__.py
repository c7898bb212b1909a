"""The sharing policy's admin API: validate, preview, publish, roll back, versions,
diff and explain (DESIGN §4)."""

from schema.areas import Area
from schema.policies.mutations import PolicyMutations
from schema.policies.queries import PolicyQueries

AREA = Area(position=70, queries=(PolicyQueries,), mutations=(PolicyMutations,))
