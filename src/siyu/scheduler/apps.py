from django.apps import AppConfig


class SchedulerConfig(AppConfig):
    name = "siyu.scheduler"
    verbose_name = "Scheduler"
