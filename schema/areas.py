"""The schema's areas: the packages ``schema/<area>/`` that add root fields.

An area is a subpackage of ``schema`` with a ``queries`` or ``mutations`` module; its
``__init__.py`` declares what it adds to the root types as ``AREA``. ``schema/__init__.py``
collects every area (:func:`areas`), so adding one names it nowhere else. Other
subpackages (helpers, the compiled read path) are not imported here.

Example (an ``orders`` area, ``schema/orders/__init__.py``)::

    from schema.areas import Area
    from schema.orders.mutations import OrderMutations
    from schema.orders.queries import OrderQueries

    AREA = Area(position=45, queries=(OrderQueries,), mutations=(OrderMutations,))
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType


@dataclass(frozen=True)
class Area:
    """What one area adds to ``Query`` and ``Mutation``: the strawberry classes whose
    fields are merged in. ``position`` orders the areas (then their package names): the
    root fields keep the order of the printed schema and its snapshots
    (tests/schema/snapshots/). The areas use steps of 10, so a new one fits between."""

    position: int
    queries: tuple[type, ...] = ()
    mutations: tuple[type, ...] = ()


def areas(package: ModuleType) -> list[Area]:
    """Every area of ``package`` (``schema``), imported, in position order."""
    found: list[tuple[int, str, Area]] = []
    for directory in package.__path__:
        for child in sorted(Path(directory).iterdir()):
            if not (child / "__init__.py").is_file() or not any(
                (child / f"{name}.py").is_file() for name in ("queries", "mutations")
            ):
                continue
            module = importlib.import_module(f"{package.__name__}.{child.name}")
            declared = getattr(module, "AREA", None)
            if not isinstance(declared, Area):
                raise TypeError(
                    f"{module.__name__} has queries or mutations but its __init__.py "
                    "declares no AREA = Area(...) (schema/areas.py)"
                )
            found.append((declared.position, child.name, declared))
    return [area for _, _, area in sorted(found, key=lambda item: item[:2])]
