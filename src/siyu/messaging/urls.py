"""Console routes of the messaging pages, included by the console under /messaging/."""

from django.urls import path

from siyu.messaging import channel_views, views

app_name = "messaging"

urlpatterns = [
    path("library/", views.library, name="library"),
    path("library/new/", views.template_new, name="template_new"),
    path("library/preview/", views.template_preview, name="template_preview"),
    path("library/<int:template_id>/edit/", views.template_edit, name="template_edit"),
    path("library/<int:template_id>/publish/", views.template_publish, name="template_publish"),
    path("library/<int:template_id>/image/", views.template_image, name="template_image"),
    path("channels/", channel_views.channels, name="channels"),
    path("channels/new/", channel_views.channel_new, name="channel_new"),
    path("channels/<int:channel_id>/", channel_views.channel_edit, name="channel_edit"),
    path("channels/guardrails/", channel_views.guardrails, name="guardrails"),
    path("outbox/", views.outbox, name="outbox"),
    path("outbox/export/", views.outbox_export, name="outbox_export"),
    path("outbox/<int:message_id>/", views.message_detail, name="message"),
]
