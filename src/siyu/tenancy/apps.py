from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "siyu.tenancy"
    verbose_name = "Tenancy"
