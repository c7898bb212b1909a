"""Partner Hub core: settings, store, identity, OAuth, access enforcement, CLI."""
