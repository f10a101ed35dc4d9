"""What a refused request was missing: the permission's name, as staff see it on the Staff roles page.

A view that knows what it needs says so in its PermissionDenied; for Django's own admin pages the
need is read from the page's name (`<app>_<model>_<page>`) and the request's method.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.urls import Resolver404, resolve

# Django's admin pages and the permission each needs; a change page only looked at needs "view". The
# project's own pages of a model (a group's refresh, its export...) say what they need themselves;
# one that does not is taken to need "change" to post and "view" to look.
ADMIN_PAGES = {"changelist": "view", "history": "view", "add": "add", "change": "change", "delete": "delete"}


def permission_names(perms: Iterable[str]) -> list[str]:
    """“Can view customer” for "customers.view_customer", in the order given; unknown ones as given."""
    from django.contrib.auth.models import Permission  # this module is imported with the logging settings

    perms = list(perms)
    found = {
        f"{app}.{codename}": name
        for app, codename, name in Permission.objects.filter(
            codename__in=[p.partition(".")[2] for p in perms]
        ).values_list("content_type__app_label", "codename", "name")
    }
    return [found.get(perm, perm) for perm in perms]


def needs_sentence(perms: Iterable[str]) -> str:
    names = [f"“{name}”" for name in permission_names(perms)]
    if not names:
        return ""
    if len(names) == 1:
        return f"This needs the permission {names[0]}."
    return f"This needs the permissions {', '.join(names[:-1])} and {names[-1]}."


def missing_for_admin_page(request) -> list[str]:
    """The permissions an admin page needs that the user lacks; [] when it cannot tell."""
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return []
    if "admin" not in match.namespaces or not match.url_name:
        return []
    from django.apps import apps
    from django.contrib import admin

    for model in (model for model in apps.get_models() if admin.site.is_registered(model)):
        prefix = f"{model._meta.app_label}_{model._meta.model_name}_"
        if not match.url_name.startswith(prefix):
            continue
        looking = request.method in ("GET", "HEAD")
        verb = ADMIN_PAGES.get(match.url_name.removeprefix(prefix), "view" if looking else "change")
        if verb == "change" and looking:
            verb = "view"
        needed = f"{model._meta.app_label}.{verb}_{model._meta.model_name}"
        if verb == "view" and request.user.has_perm(f"{model._meta.app_label}.change_{model._meta.model_name}"):
            return []  # the change permission lets staff view too
        return [] if request.user.has_perm(needed) else [needed]
    return []
