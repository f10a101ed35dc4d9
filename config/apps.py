"""The project's own app (API keys as the back office shows them) and the admin with the back office's site."""

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class ConfigConfig(AppConfig):
    default = True  # of the two configurations here, the config app's own
    name = "config"
    verbose_name = "Configuration"


class BackOfficeAdminConfig(admin_apps.AdminConfig):
    """Django's admin with the back office's own site (config.admin_site) as `admin.site`."""

    default = False  # AdminConfig's own says True; "config" means ConfigConfig
    default_site = "config.admin_site.BackOfficeSite"
