from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "siyu.messaging"
    verbose_name = "Messaging"
