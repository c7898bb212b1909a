"""Administration: organizations and OAuth clients (scope hub:admin, operator or department)."""

from schema.admin.mutations import AdminMutations
from schema.admin.queries import AdminQueries
from schema.areas import Area

AREA = Area(position=60, queries=(AdminQueries,), mutations=(AdminMutations,))
