"""Administration of connectors and outbound deliveries (scope hub:admin, operator or
department): connectors and their runs and dead letters, every subscription's
deliveries; create, update, disable and run connectors, replay dead letters and
deliveries (docs/sync-admin.md). Absent from every other caller's schema."""

from schema.areas import Area
from schema.sync_admin.mutations import SyncAdminMutations
from schema.sync_admin.queries import SyncAdminQueries

AREA = Area(position=100, queries=(SyncAdminQueries,), mutations=(SyncAdminMutations,))
