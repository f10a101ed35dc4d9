from django.apps import AppConfig


class GroupsConfig(AppConfig):
    name = "groups"
    verbose_name = "Customer groups"

    def ready(self) -> None:
        from . import receivers, schedules  # noqa: F401  (customer writes; group saves keep beat in step)
