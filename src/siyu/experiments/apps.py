from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    name = "siyu.experiments"
    verbose_name = "Experiments"
