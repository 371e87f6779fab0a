"""Console routes of the metrics page, included by the console under /analytics/metrics/."""

from django.urls import path

from siyu.analytics import leaderboards_views, metrics_views

app_name = "metrics"

urlpatterns = [
    path("", metrics_views.metrics_page, name="page"),
    path("export.csv", metrics_views.metrics_csv, name="csv"),
    path("leaderboards/", leaderboards_views.leaderboards_page, name="leaderboards"),
    path("leaderboards/export.csv", leaderboards_views.leaderboards_csv, name="leaderboards_csv"),
]
