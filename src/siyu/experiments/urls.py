"""Console routes of experiments, included by the console under /experiments/."""

from django.urls import path

from siyu.experiments import views

app_name = "experiments"

urlpatterns = [
    path("", views.experiments_list, name="list"),
    path("new/", views.experiment_new, name="new"),
    path("<int:experiment_id>/", views.experiment_detail, name="detail"),
    path("<int:experiment_id>/start/", views.experiment_start, name="start"),
    path("<int:experiment_id>/results.csv", views.experiment_csv, name="csv"),
]
