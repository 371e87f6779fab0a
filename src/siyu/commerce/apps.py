from django.apps import AppConfig


class CommerceConfig(AppConfig):
    name = "siyu.commerce"
    verbose_name = "Commerce"
