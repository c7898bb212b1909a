"""``hub import``: one file, once, as an ad-hoc files connector.

The connector is named after the resource, the organization and the file's absolute path
(``import-feedback-<hash>``), so importing the same file again finds it: a run that was
interrupted resumes from its checkpoint; after a complete run the file is read from the
start again, and every record already stored counts as unchanged (or updated).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hub.access import Resource
from hub.sync.config import ConnectorSpec, mapping_of, organization_named, save_connector
from hub.sync.errors import ConnectorConfigError


def readable_file(path: Path) -> Path:
    """``path`` made absolute, or :class:`ConnectorConfigError` when it is no file."""
    if not path.is_file():
        if path.is_dir():
            what = "it is a folder"
        elif path.exists():
            # A pipe or a device: read once, it cannot be read again from its start, as a
            # run resumed from its checkpoint or a rerun of the file does.
            what = "it is not a regular file (a pipe or a device); import a file"
        else:
            what = "no such file"
        raise ConnectorConfigError(f"cannot read {path}: {what}")
    return path.resolve()


def import_name(resource: Resource, organization: str, path: Path) -> str:
    key = f"{resource.value}\n{organization}\n{path}".encode()
    return f"import-{resource.value.lower()}-{hashlib.sha256(key).hexdigest()[:16]}"


async def define_import(
    session: AsyncSession,
    resource: Resource,
    path: Path,
    organization: str,
    mapping: dict[str, Any] | None,
) -> str:
    """Create (or update) the ad-hoc connector for importing ``path`` (absolute: see
    :func:`readable_file`); its name."""
    await organization_named(session, organization)
    mapping_of(resource, mapping)
    name = import_name(resource, organization, path)
    spec = ConnectorSpec(
        name=name,
        kind="files",
        resource=resource,
        organization=organization,
        config={"path": str(path)},
        mapping=mapping,
        adhoc=True,
    )
    await save_connector(session, spec)
    return name


__all__ = ["define_import", "import_name", "readable_file"]
