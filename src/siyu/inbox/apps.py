from django.apps import AppConfig


class InboxConfig(AppConfig):
    name = "siyu.inbox"
    verbose_name = "Staff task inbox"
