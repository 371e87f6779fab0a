from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "siyu.events"
    verbose_name = "Events"
