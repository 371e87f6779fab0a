from django.apps import AppConfig


class InsightsConfig(AppConfig):
    name = "siyu.insights"
    verbose_name = "Insights"
