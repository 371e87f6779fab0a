from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "siyu.console"
    verbose_name = "Console"
