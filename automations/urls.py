"""Public pages of automations, mounted at /unsubscribe/."""

from django.urls import path

from .views import unsubscribe_view

app_name = "automations"
urlpatterns = [path("<str:token>", unsubscribe_view, name="unsubscribe")]
