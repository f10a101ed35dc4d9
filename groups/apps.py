from django.apps import AppConfig


class GroupsConfig(AppConfig):
    name = "groups"
    verbose_name = "Customer groups"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (listens to customer writes)
