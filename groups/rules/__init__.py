"""The rule language of dynamic groups: validate a rules document, compile it to SQL, describe and explain it."""

from __future__ import annotations

from .compiler import compile_rules, render_sql
from .describe import describe_rules
from .explain import explain_rules
from .fields import Catalogue
from .validation import RulesInvalid, ensure_valid_rules, events_read, rule_dependencies, validate_rules

__all__ = [
    "Catalogue",
    "RulesInvalid",
    "compile_rules",
    "describe_rules",
    "ensure_valid_rules",
    "events_read",
    "explain_rules",
    "render_sql",
    "rule_dependencies",
    "validate_rules",
]
