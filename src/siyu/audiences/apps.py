from django.apps import AppConfig


class AudiencesConfig(AppConfig):
    name = "siyu.audiences"
    verbose_name = "Audiences"

    def ready(self) -> None:
        # Registers the merge handlers for tags and segment memberships with contacts.services.
        from siyu.audiences import services  # noqa: F401
