"""Back-office forms for groups: the group form (rule builder, schedule), and choosing members by hand."""

from __future__ import annotations

import csv
import io
import json

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from config.timezones import time_zone_names
from customers.models import Event

from . import schedules, services
from .models import CustomerGroup
from .rules import Catalogue, operators, validate_rules
from .rules import fields as rule_fields

NO_SCHEDULE = ""
FREQUENCY_CHOICES = [(NO_SCHEDULE, "No schedule"), ("hourly", "Every hour"), ("daily", "Every day"),
                     ("weekly", "Every week"), ("monthly", "Every month"), ("cron", "Cron expression")]  # fmt: skip
WEEKDAY_CHOICES = list(zip(schedules.WEEKDAYS, schedules.WEEKDAY_NAMES, strict=True))
# A new group's refresh mode left to the rules (services.default_refresh_mode).
AUTOMATIC_MODE = ""
# A pasted list or file longer than this is surely a mistake for a manual group; the import is for that.
MAX_IDENTIFIERS = 50_000


def catalogue_for_builder(group: CustomerGroup | None = None) -> dict:
    """What the rule builder offers: fields by type, operators by type, windows, and the other groups."""
    catalogue = Catalogue.load()
    groups = CustomerGroup.objects.exclude(pk=group.pk if group else None).order_by("name")
    # The names events have, and those rules already count (a rule may wait for its first event).
    events = set(Event.objects.names())
    for rules in CustomerGroup.objects.values_list("rules", flat=True):
        _event_names(rules, events)
    return {
        "customer_fields": {
            **rule_fields.CUSTOMER_FIELDS,
            **{f"attributes.{k}": t for k, t in catalogue.customer.items()},
        },
        "account_fields": {
            **rule_fields.ACCOUNT_FIELDS,
            **{f"attributes.{k}": t for k, t in catalogue.account.items()},
        },
        "labels": {f"{entity}:attributes.{key}": label for (entity, key), label in catalogue.labels.items()},
        "operators": {type_: list(ops) for type_, ops in operators.OPERATORS.items()},
        "operator_labels": operators.OPERATOR_LABELS,
        "no_value_ops": sorted(operators.NO_VALUE_OPS),
        "aggregate_ops": list(operators.AGGREGATE_OPS),
        "calendar_windows": list(operators.CALENDAR_WINDOWS),
        "duration_units": list(operators.DURATION_UNITS),
        "groups": [[g.pk, g.name] for g in groups.only("pk", "name")],
        "event_names": sorted(events),
    }


def _event_names(rule, found: set[str]) -> None:
    if isinstance(rule, dict):
        if isinstance(rule.get("event"), str):
            found.add(rule["event"])
        for value in rule.values():
            _event_names(value, found)
    elif isinstance(rule, list):
        for item in rule:
            _event_names(item, found)


class RuleBuilderWidget(forms.Textarea):
    """The rules JSON as a textarea that the rule builder script edits, plus the catalogue it needs."""

    template_name = "groups/rule_builder_widget.html"

    def __init__(self, attrs=None) -> None:
        super().__init__(attrs={"rows": 8, "cols": 80, "class": "vLargeTextField rules-json", **(attrs or {})})
        self.errors: list[dict] = []
        self.group: CustomerGroup | None = None
        self.preview_url = ""
        self.values_url = ""

    def format_value(self, value):
        if isinstance(value, str):
            return value
        # A new group starts from "all of nothing" (everyone), the builder's empty canvas.
        return json.dumps(value if value not in (None, "", {}) else {"all": []}, indent=2)

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        element_id = context["widget"]["attrs"].get("id", name)
        context["builder"] = {
            "catalogue_id": f"{element_id}_catalogue",
            "errors_id": f"{element_id}_errors",
            "catalogue": catalogue_for_builder(self.group),
            "errors": self.errors,
            "preview_url": self.preview_url,
            "values_url": self.values_url,
            "group_id": self.group.pk if self.group else None,
        }
        return context

    class Media:
        css = {"all": ["groups/rule_builder.css"]}
        js = ["groups/rule_builder.js"]


class TimeZoneInput(forms.TextInput):
    """A time zone typed with the IANA names offered as the person types ("par" offers Europe/Paris)."""

    template_name = "groups/time_zone_input.html"

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        list_id = f"{context['widget']['attrs'].get('id', name)}_names"
        context["widget"]["attrs"].update({"list": list_id, "autocomplete": "off", "placeholder": "Type to search"})
        context["widget"]["list_id"] = list_id
        context["widget"]["zones"] = time_zone_names()
        return context


class CustomerGroupForm(forms.ModelForm):
    """The group's settings. Rules are checked with the rule language's validator: invalid rules never save."""

    schedule_frequency = forms.ChoiceField(choices=FREQUENCY_CHOICES, required=False, label="Refresh schedule")
    schedule_time = forms.CharField(
        required=False,
        label="At (HH:MM)",
        help_text="In the group's time zone (below).",
        max_length=5,
        widget=forms.TextInput(attrs={"placeholder": "06:00", "size": 6}),
    )
    schedule_minute = forms.IntegerField(required=False, min_value=0, max_value=59, label="Minute past the hour")
    schedule_weekdays = forms.MultipleChoiceField(
        choices=WEEKDAY_CHOICES, required=False, label="On", widget=forms.CheckboxSelectMultiple
    )
    schedule_day = forms.IntegerField(required=False, min_value=1, max_value=31, label="Day of the month")
    schedule_cron = forms.CharField(
        required=False,
        label="Cron expression",
        max_length=100,
        help_text="minute hour day-of-month month day-of-week, e.g. */30 6-18 * * 1-5",
    )

    class Meta:
        model = CustomerGroup
        fields = ["name", "slug", "description", "kind", "rules", "refresh_mode", "time_zone", "is_active",
                  "activate_at", "deactivate_at", "tags", "sync_enabled"]  # fmt: skip
        widgets = {
            "rules": RuleBuilderWidget,
            "description": forms.Textarea(attrs={"rows": 2, "cols": 80}),
            "time_zone": TimeZoneInput,
        }
        error_messages = {"slug": {"unique": "Another group already uses this slug; change it or leave it empty."}}
        help_texts = {
            "slug": "The group's name in addresses and the API; left empty, it is made from the name.",
            "sync_enabled": "Sends the group to the apps chosen under “Sync to other apps” below, as a list or tag; "
            "unticked, every sync of the group is held.",
            "time_zone": "A city's zone such as Europe/Paris (type part of it to pick one); empty uses the site's "
            "time zone.",
            "activate_at": "Activate the group at this time (an inactive group holds no members).",
            "deactivate_at": "Deactivate the group at this time; it then lets go of every member.",
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        schedule = self.instance.schedule or {}
        self.initial.setdefault("schedule_frequency", schedule.get("frequency", NO_SCHEDULE))
        for key in ("time", "minute", "weekdays", "day", "cron"):
            if key in schedule:
                self.initial.setdefault(f"schedule_{key}", schedule[key])
        if "rules" in self.fields:
            widget = self.fields["rules"].widget
            widget.group = self.instance if self.instance.pk else None
        if "slug" in self.fields:
            self.fields["slug"].required = False
        for name in ("activate_at", "deactivate_at"):
            if name in self.fields:  # the admin shows and reads these in the site's zone, not the group's
                self.fields[name].help_text += f" In the site's time zone ({timezone.get_current_timezone_name()})."
        if self.instance.pk and "kind" in self.fields:
            # A group's kind is fixed once created (a manual group's history is not a rule's).
            self.fields["kind"].disabled = True
        if not self.instance.pk and "refresh_mode" in self.fields:
            field = self.fields["refresh_mode"]
            field.choices = [(AUTOMATIC_MODE, "Automatic: always current when the rules change with time, "
                              "else events only"), *CustomerGroup.RefreshMode.choices]  # fmt: skip
            field.required = False
            self.initial["refresh_mode"] = AUTOMATIC_MODE

    def clean_rules(self):
        rules = self.cleaned_data.get("rules")
        kind = self.cleaned_data.get("kind") or self.instance.kind
        if kind == CustomerGroup.Kind.MANUAL:
            return {}
        if rules in (None, {}, ""):
            rules = {"all": []}
        problems = [
            {**problem, "message": operators.in_staff_words(problem["message"])}
            for problem in validate_rules(rules, catalogue=Catalogue.load(), group_id=self.instance.pk)
        ]
        if problems:
            self.fields["rules"].widget.errors = problems
            raise ValidationError([f"{p['path'] or '/'}: {p['message']}" for p in problems])
        return rules

    def _schedule_document(self) -> dict:
        data = self.cleaned_data
        frequency = data.get("schedule_frequency") or NO_SCHEDULE
        if frequency == NO_SCHEDULE:
            return {}
        document: dict = {"frequency": frequency}
        wanted = {"hourly": ["minute"], "daily": ["time"], "weekly": ["weekdays", "time"],
                  "monthly": ["day", "time"], "cron": ["cron"]}[frequency]  # fmt: skip
        for key in wanted:
            value = data.get(f"schedule_{key}")
            if value not in (None, "", []):
                document[key] = value.strip() if isinstance(value, str) else value
        return document

    def _clean_name_and_slug(self, cleaned: dict) -> None:
        """A taken name is said on the name; a slug made from the name follows it and is always free.

        Staff type a name and the slug is filled in from it, so a clash of that slug is a clash of
        names (said on the name) or of two names with one slug ("VIPs" and "VIPs!": made free). A
        rename makes a new slug when the old one was made from the old name; a slug typed by hand stays.
        """
        name = cleaned.get("name")
        if not name or "slug" not in self.fields:
            return
        pk, saved = self.instance.pk, self.instance
        slug = cleaned.get("slug") or ""
        if services.name_taken(name, exclude=pk):
            self.add_error("name", f"Another group is already named “{name.strip()}”; choose another name.")
            cleaned["slug"] = services.free_slug(name, exclude=pk)  # one message, on the name
            return
        renamed = pk and "name" in self.changed_data and "slug" not in self.changed_data
        taken = CustomerGroup.objects.filter(slug=slug).exclude(pk=pk).exists()
        if (
            not slug
            or (renamed and services.slug_follows_name(saved.slug, saved.name))
            or (taken and services.slug_follows_name(slug, name))
        ):
            cleaned["slug"] = services.free_slug(name, exclude=pk)

    def clean(self):
        cleaned = super().clean()
        self._clean_name_and_slug(cleaned)
        kind = cleaned.get("kind") or self.instance.kind
        if not self.instance.pk and cleaned.get("refresh_mode") == AUTOMATIC_MODE:
            cleaned["refresh_mode"] = services.default_refresh_mode(kind, cleaned.get("rules"))
        refresh_mode = cleaned.get("refresh_mode")
        schedule = self._schedule_document()
        if refresh_mode is not None and "time_zone" in cleaned:
            problems = services.settings_errors(
                kind=kind, refresh_mode=refresh_mode, schedule=schedule, time_zone=cleaned["time_zone"]
            )
            for problem in problems:
                field = {
                    "/refresh_mode": "refresh_mode",
                    "/time_zone": "time_zone",
                    "": "schedule_frequency",
                    "/frequency": "schedule_frequency",
                }.get(problem["path"], "schedule_" + problem["path"].strip("/"))
                self.add_error(field if field in self.fields else "schedule_frequency", problem["message"])
        if "is_active" in cleaned:
            for problem in services.activation_errors(
                is_active=cleaned["is_active"],
                activate_at=cleaned.get("activate_at"),
                deactivate_at=cleaned.get("deactivate_at"),
                saved=self.instance if self.instance.pk else None,
            ):
                self.add_error(problem["path"].strip("/"), problem["message"].capitalize() + ".")
        cleaned["schedule"] = schedule
        self.instance.schedule = schedule
        return cleaned


class ChooseGroupForm(forms.Form):
    """The intermediate page of the customer list's add/remove actions."""

    group = forms.ModelChoiceField(
        queryset=CustomerGroup.objects.filter(kind=CustomerGroup.Kind.MANUAL).order_by("name"),
        label="Manual group",
        empty_label=None,
    )


class MemberListForm(forms.Form):
    """Customers to add or remove, as pasted emails / external ids or a CSV file of them."""

    operation = forms.ChoiceField(
        choices=[("add", "Add to the group"), ("remove", "Remove from the group")],
        widget=forms.RadioSelect,
        initial="add",
    )
    identifiers = forms.CharField(
        required=False,
        label="Emails or external ids",
        widget=forms.Textarea(attrs={"rows": 6, "cols": 60, "placeholder": "ann@example.com\nC-1042"}),
        help_text="One per line, or separated by commas or spaces.",
    )
    file = forms.FileField(
        required=False,
        label="Or a CSV file",
        help_text="Every cell of every row is read as an email or an external id.",
    )

    def clean(self):
        cleaned = super().clean()
        tokens: list[str] = []
        text = cleaned.get("identifiers") or ""
        tokens += [t for t in text.replace(",", " ").replace(";", " ").split() if t]
        upload = cleaned.get("file")
        if upload is not None:
            content = upload.read().decode("utf-8-sig", errors="replace")
            for row in csv.reader(io.StringIO(content)):
                tokens += [cell.strip() for cell in row if cell.strip()]
        tokens = list(dict.fromkeys(tokens))
        if not tokens:
            raise ValidationError("Paste at least one email or external id, or choose a CSV file.")
        if len(tokens) > MAX_IDENTIFIERS:
            raise ValidationError(f"At most {MAX_IDENTIFIERS} customers at once.")
        cleaned["tokens"] = tokens
        return cleaned
