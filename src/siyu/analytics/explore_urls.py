"""Console routes of the explore analyses, included by the console under /analytics/explore/."""

from django.urls import path

from siyu.analytics import explore_views as views

app_name = "explore"

urlpatterns = [
    path("", views.funnel_page, name="funnel"),
    path("funnel/dropoffs/", views.funnel_save_dropoffs, name="funnel_save"),
    path("retention/", views.retention_page, name="retention"),
    path("distribution/", views.distribution_page, name="distribution"),
    path("attribution/", views.attribution_page, name="attribution"),
]
