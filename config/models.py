"""API keys as the back office shows them: by a short prefix and their owner, never in full."""

from __future__ import annotations

from rest_framework.authtoken.models import TokenProxy


class ApiKey(TokenProxy):
    """A user's API token. Its text is the whole key, so everything the admin renders (titles,
    breadcrumbs, messages, the log of actions) names it by its first characters instead."""

    class Meta:
        proxy = True
        verbose_name = "API key"
        verbose_name_plural = "API keys"

    def __str__(self) -> str:
        return f"{self.key[:4]}… ({self.user})"
