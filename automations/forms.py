"""Back-office forms for triggers and one-off sends: each action's settings as real fields, durations as a
number and a unit. They store the same settings document the API takes, checked by the same action code."""

from __future__ import annotations

import copy
from datetime import timedelta

from django import forms

from .actions import action_class
from .models import Send, Trigger

UNITS = {"minutes": 60, "hours": 3600, "days": 86400}
SECRET_SETTINGS = {"secret"}  # never shown back; blank on an edit keeps the stored one


def setting_field_name(kind: str, name: str) -> str:
    return f"{kind}_{name}"


class DurationWidget(forms.MultiWidget):
    def __init__(self, attrs=None):
        super().__init__([forms.NumberInput(attrs={"min": 0, "style": "width: 6em"}),
                          forms.Select(choices=[(unit, unit) for unit in UNITS])], attrs)  # fmt: skip

    def decompress(self, value):
        if not value:
            return [None, "hours"]
        seconds = int(value.total_seconds())
        # The largest unit that says it exactly: 2 days rather than 48 hours.
        for unit, size in reversed(UNITS.items()):
            if seconds % size == 0:
                return [seconds // size, unit]
        return [round(seconds / 60), "minutes"]


class DurationField(forms.MultiValueField):
    """A length of time as a whole number of minutes, hours or days; empty for none."""

    widget = DurationWidget

    def __init__(self, **kwargs):
        # A unit is always chosen in the page's select: an empty number alone means "none".
        fields = [forms.IntegerField(min_value=0, required=False),
                  forms.ChoiceField(choices=[(unit, unit) for unit in UNITS], required=False)]  # fmt: skip
        super().__init__(fields, require_all_fields=False, **kwargs)

    def compress(self, data_list):
        if not data_list or data_list[0] in (None, ""):
            return None
        return timedelta(seconds=data_list[0] * UNITS[data_list[1] or "hours"]) or None


class ActionSettingsForm(forms.ModelForm):
    """Adds every action's settings fields (named `<kind>_<setting>`) and builds `settings` from those of
    the chosen action only; the others are on the page, hidden, and ignored."""

    kind_field = ""  # the model field that chooses the action: "action" or "channel"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        stored_kind = getattr(self.instance, self.kind_field, "")
        stored = self.instance.settings or {}
        for name, value in stored.items():
            field = setting_field_name(stored_kind, name)
            if field in self.fields and name not in SECRET_SETTINGS:
                self.initial.setdefault(field, value)
            elif field in self.fields and value:
                self.fields[field].help_text = f"Stored. Leave blank to keep it. {self.fields[field].help_text}"

    def clean(self):
        data = super().clean()
        kind = data.get(self.kind_field)
        if not kind:
            return data
        action = action_class(kind)
        same_action = getattr(self.instance, self.kind_field, "") == kind
        stored = (self.instance.settings or {}) if same_action else {}
        settings = {}
        for name in action.settings_fields:
            value = data.get(setting_field_name(kind, name))
            if value in (None, "") and name in SECRET_SETTINGS and stored.get(name):
                value = stored[name]
            if value not in (None, ""):
                settings[name] = value
        # Settings the form has no field for (an API client may keep its own notes there) stay as they were.
        settings = {**{n: v for n, v in stored.items() if n not in action.settings_fields}, **settings}
        for name, problem in action.settings_errors_for(settings).items():
            field = setting_field_name(kind, name)
            if field in self.fields and field not in self.errors:
                self.add_error(field, problem.removeprefix(f"The {name} template is not valid: "))
            elif field not in self.fields:
                self.add_error(None, f"{name}: {problem}")
        self.settings = settings
        return data

    def _post_clean(self):
        # The model's own check of `settings` runs on what the fields built, not on what was stored.
        if hasattr(self, "settings"):
            self.instance.settings = self.settings
        super()._post_clean()

    def _update_errors(self, errors):
        # The model reports bad settings as a whole; clean() has already put each on its own field.
        if hasattr(errors, "error_dict") and "settings" in errors.error_dict:
            errors.error_dict.pop("settings")
            if not errors.error_dict:
                return
        super()._update_errors(errors)

    @classmethod
    def kinds(cls) -> list[str]:
        return [value for value, _ in cls._meta.model._meta.get_field(cls.kind_field).choices]

    @classmethod
    def action_fieldsets(cls) -> list[tuple[str, dict]]:
        """One fieldset per action, marked for the script that shows only the chosen one."""
        return [
            (
                f"{action_class(kind).label}: settings",
                {
                    "fields": [setting_field_name(kind, n) for n in action_class(kind).settings_fields],
                    "classes": ["action-settings", f"action-settings-{kind}"],
                },
            )  # fmt: skip
            for kind in cls.kinds()
        ]


def with_settings_fields(form: type[ActionSettingsForm]) -> type[ActionSettingsForm]:
    """Declare every action's settings fields on the form, so the admin's fieldsets can name them."""
    for kind in form.kinds():
        for name, field in action_class(kind).settings_fields.items():
            field = copy.deepcopy(field)
            # Only the chosen action's settings are required; clean() says which are missing.
            field.required = False
            named = setting_field_name(kind, name)
            form.declared_fields[named] = form.base_fields[named] = field
    return form


@with_settings_fields
class TriggerForm(ActionSettingsForm):
    kind_field = "action"
    cooldown = DurationField(required=False, label="Cooldown", help_text=Trigger._meta.get_field("cooldown").help_text)
    minimum_time = DurationField(required=False, label="Minimum time",
                                 help_text=Trigger._meta.get_field("minimum_time").help_text)  # fmt: skip

    class Meta:
        model = Trigger
        fields = ["name", "group", "on", "is_active", "action", "reentry", "cooldown", "minimum_time", "origin",
                  "suppressed_by", "quiet_start", "quiet_end"]  # fmt: skip
        labels = {"on": "When the customer", "reentry": "Re-entry", "is_active": "Active"}

    class Media:
        js = ["automations/action_settings.js"]


@with_settings_fields
class SendForm(ActionSettingsForm):
    kind_field = "channel"

    class Meta:
        model = Send
        fields = ["name", "group", "channel", "suppressed_by"]

    class Media:
        js = ["automations/action_settings.js"]
