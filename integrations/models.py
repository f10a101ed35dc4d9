"""Connections to other apps and the sync outbox (built with the sync work)."""
