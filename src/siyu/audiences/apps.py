from django.apps import AppConfig


class AudiencesConfig(AppConfig):
    name = "siyu.audiences"
    verbose_name = "Audiences"

    def ready(self) -> None:
        # Registers the merge handlers for tags, segment memberships and layers with contacts.services.
        from siyu.audiences import layers_services, services  # noqa: F401
