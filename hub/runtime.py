"""What the running app holds: settings, database, signing keys, client directory."""

from __future__ import annotations

from dataclasses import dataclass

from hub.db import Database
from hub.oauth.directory import ClientDirectory
from hub.oauth.keys import KeyRing, load_keyring
from hub.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    database: Database
    keyring: KeyRing
    clients: ClientDirectory

    async def reload_keys(self) -> None:
        async with self.database.session() as session:
            self.keyring = await load_keyring(session, self.settings.master_key)
