from django.apps import AppConfig


class InboxConfig(AppConfig):
    name = "siyu.inbox"
    verbose_name = "Staff task inbox"

    def ready(self) -> None:
        # Registers the merge handler for cadences with contacts.services.
        from siyu.inbox import services  # noqa: F401
