"""Console routes of the customer-value page, included by the console under /insights/."""

from django.urls import path

from siyu.insights import views

app_name = "insights"

urlpatterns = [
    path("", views.insights_home, name="home"),
    path("fits/", views.fit_start, name="fit_start"),
    path("fits/<int:fit_id>/status/", views.fit_status, name="fit_status"),
    path("spend/", views.spend_save, name="spend_save"),
]
