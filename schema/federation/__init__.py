"""Federation in the GraphQL layer (DESIGN §7): the hub's schema extended with the fields
of the accepted remote subgraphs (:mod:`schema.federation.compose`), and their resolvers,
which fetch them in batches (:mod:`schema.federation.fetch`) under the access module's
decisions. The hub's own subgraph side (``_service``, ``_entities``, ``@key``) is in
:mod:`schema` and the entity types themselves."""

from schema.federation.compose import Composer

__all__ = ["Composer"]
