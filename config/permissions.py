"""API permissions: Django's per-model permissions, for reads as well as writes."""

from __future__ import annotations

from rest_framework.permissions import DjangoModelPermissions

from .refusals import needs_sentence


class ModelPermissions(DjangoModelPermissions):
    """DjangoModelPermissions that also asks for the model's view permission on reads.

    A view may name, per action, the permissions an action needs instead (for example a POST that
    only reads, like a preview, or a refresh that changes a group): `action_permissions =
    {"preview": ["groups.view_customergroup"]}`; a plain view may set `required_permissions`.
    Anonymous requests are refused before any check, so they get 401 (with the Token challenge), never 403.
    A 403 names the permissions that were missing.
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
        if needed is None:
            if getattr(view, "_ignore_model_permissions", False):
                return True
            model = self._queryset(view).model
            if request.method not in self.perms_map:
                return super().has_permission(request, view)  # DRF's 405 for a method it does not map
            needed = self.get_required_permissions(request.method, model)
        missing = [perm for perm in needed if not request.user.has_perm(perm)]
        # DRF answers a refusal with the permission's `message`: one instance serves one request.
        if missing:
            self.message = needs_sentence(missing)
        return not missing
