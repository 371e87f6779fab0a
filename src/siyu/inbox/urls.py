"""Console routes of the task inbox, included by the console under /tasks/."""

from django.urls import path

from siyu.inbox import views

app_name = "inbox"

urlpatterns = [
    path("", views.tasks_list, name="list"),
    path("team/", views.team, name="team"),
    path("cadence/segment/", views.segment_cadence, name="segment_cadence"),
    path("<int:task_id>/complete/", views.task_complete, name="complete"),
    path("<int:task_id>/snooze/", views.task_snooze, name="snooze"),
    path("<int:task_id>/reassign/", views.task_reassign, name="reassign"),
    path("<int:task_id>/cancel/", views.task_cancel, name="cancel"),
    path("contact/<int:contact_id>/", views.contact_panel, name="contact_panel"),
    path("contact/<int:contact_id>/cadence/", views.contact_cadence, name="contact_cadence"),
    path("contact/<int:contact_id>/new/", views.contact_task_new, name="contact_task_new"),
]
