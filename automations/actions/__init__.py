"""What a trigger or a one-off send does: one module per action, registered by kind."""

from . import email, notify, sms, task, webhook  # noqa: F401  (each registers itself)
from .base import Action, ActionError, Delivery, action_class

__all__ = ["Action", "ActionError", "Delivery", "action_class"]
