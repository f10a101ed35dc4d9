"""Triggers on entering or leaving a group and their firings (built with the automations work)."""
