"""The hub's OAuth 2.0 authorization server and resource-side token checks (DESIGN §6)."""
