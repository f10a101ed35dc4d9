"""API permissions: Django's per-model permissions, for reads as well as writes."""

from __future__ import annotations

from rest_framework.permissions import DjangoModelPermissions


class ModelPermissions(DjangoModelPermissions):
    """DjangoModelPermissions that also asks for the model's view permission on reads.

    A view may name, per action, the permissions an action needs instead (for example a POST that
    only reads, like a preview, or a refresh that changes a group): `action_permissions =
    {"preview": ["groups.view_customergroup"]}`; a plain view may set `required_permissions`.
    Anonymous requests are refused before any check, so they get 401 (with the Token challenge), never 403.
    """

    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }

    def has_permission(self, request, view) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        needed = getattr(view, "action_permissions", {}).get(getattr(view, "action", None))
        if needed is None:
            needed = getattr(view, "required_permissions", None)
        if needed is not None:
            return request.user.has_perms(needed)
        return super().has_permission(request, view)
