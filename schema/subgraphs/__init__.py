"""Remote subgraphs for hub administrators: their status, registering one, refreshing
its SDL (the GraphQL side of ``hub subgraphs``, docs/federation.md)."""

from schema.areas import Area
from schema.subgraphs.mutations import SubgraphMutations
from schema.subgraphs.queries import SubgraphQueries

AREA = Area(position=110, queries=(SubgraphQueries,), mutations=(SubgraphMutations,))
