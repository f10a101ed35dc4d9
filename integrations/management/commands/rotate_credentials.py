"""Encrypt every connection's credentials again with the first key, after putting a new key first."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from integrations import services


class Command(BaseCommand):
    help = "Re-encrypt connection credentials with the first of CREDENTIALS_KEYS (after a key rotation)."

    def handle(self, *args, **options) -> None:
        try:
            count = services.rotate_credentials()
        except services.CredentialsUnreadable as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"Credentials of {count} connections encrypted with the current key.")
