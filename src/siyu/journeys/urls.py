"""Console routes of journeys, included by the console under /journeys/."""

from django.urls import path

from siyu.journeys import views

app_name = "journeys"

urlpatterns = [
    path("", views.journeys_list, name="list"),
    path("new/", views.journey_new, name="new"),
    path("dry-run/", views.journey_dry_run, name="dry_run"),
    path("<int:journey_id>/", views.journey_detail, name="detail"),
    path("<int:journey_id>/edit/", views.journey_edit, name="edit"),
    path("<int:journey_id>/export.json", views.journey_export, name="export"),
    path("<int:journey_id>/<str:action>/", views.journey_action, name="action"),
]
