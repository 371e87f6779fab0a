from django.apps import AppConfig


class JourneysConfig(AppConfig):
    name = "siyu.journeys"
    verbose_name = "Journeys"

    def ready(self) -> None:
        # Registers the merge handler for enrollments with contacts.services.
        from siyu.journeys import services  # noqa: F401
