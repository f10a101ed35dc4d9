"""The back office's admin site: the marketing objects first, the technical tables under "System".

A model admin may offer links of its own on the home page and in the sidebar, next to its model,
through `index_links(request) -> [(name, url)]` (the customer import, the group health page).
"""

from __future__ import annotations

from django.contrib.admin import AdminSite
from django.urls import reverse

# The order staff meet the apps in; apps not named here come after them, by name.
MARKETING_APPS = ("groups", "customers", "automations", "integrations")
# Keys, staff accounts and roles, login lockouts and the beat scheduler's tables: for administrators.
SYSTEM_APPS = ("auth", "config", "authtoken", "django_celery_beat", "axes")
SYSTEM_LABEL = "system"
# "Groups" beside customer groups would confuse: Django's auth groups are the staff roles.
RENAMED = {("auth", "Group"): "Staff roles"}


class BackOfficeSite(AdminSite):
    site_header = "Customer groups"
    site_title = "Customer groups"
    index_title = "Back office"

    def get_app_list(self, request, app_label=None):
        apps = super().get_app_list(request, app_label)
        for app in apps:
            app["models"] = [entry for model in app["models"] for entry in self._with_links(request, app, model)]
        if app_label is not None:
            return apps
        marketing = [app for app in apps if app["app_label"] not in SYSTEM_APPS]
        marketing.sort(key=lambda app: (_rank(app["app_label"]), app["name"]))
        system = [model for app in apps if app["app_label"] in SYSTEM_APPS for model in app["models"]]
        if system:
            marketing.append(
                {
                    "name": "System",
                    "app_label": SYSTEM_LABEL,
                    # The home page: an anchor, so the sidebar never marks it as the app of every page.
                    "app_url": reverse("admin:index", current_app=self.name) + f"#{SYSTEM_LABEL}",
                    "has_module_perms": True,
                    "models": system,
                }
            )
        return marketing

    def _with_links(self, request, app: dict, model: dict) -> list[dict]:
        label = RENAMED.get((app["app_label"], model["object_name"]))
        if label:
            model["name"] = label
        model_admin = self._registry.get(model.get("model"))
        index_links = getattr(model_admin, "index_links", None)
        links = index_links(request) if index_links is not None else []
        return [
            model,
            *(
                {
                    "name": name,
                    "object_name": f"{model['object_name']}-link",
                    "admin_url": url,
                    "view_only": True,
                    "add_url": None,
                    "perms": {"view": True},
                }
                for name, url in links
            ),
        ]


def _rank(app_label: str) -> int:
    return MARKETING_APPS.index(app_label) if app_label in MARKETING_APPS else len(MARKETING_APPS)
