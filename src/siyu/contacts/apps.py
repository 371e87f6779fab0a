from django.apps import AppConfig


class ContactsConfig(AppConfig):
    name = "siyu.contacts"
    verbose_name = "Contacts"
