from django.apps import AppConfig


class JourneysConfig(AppConfig):
    name = "siyu.journeys"
    verbose_name = "Journeys"
