"""Console routes of the audience pages, included by the console under /audiences/."""

from django.urls import path

from siyu.audiences import layers_views, views

app_name = "audiences"

urlpatterns = [
    path("segments/", views.segments_list, name="segments"),
    path("segments/new/", views.segment_new, name="segment_new"),
    path("segments/upload/", views.segment_upload, name="segment_upload"),
    path("segments/preview/", views.segment_preview, name="segment_preview"),
    path("segments/<int:segment_id>/", views.segment_detail, name="segment"),
    path("segments/<int:segment_id>/edit/", views.segment_edit, name="segment_edit"),
    path("segments/<int:segment_id>/refresh/", views.segment_refresh, name="segment_refresh"),
    path("segments/<int:segment_id>/export/", views.segment_export, name="segment_export"),
    path("segments/<int:segment_id>/tag/", views.segment_tag, name="segment_tag"),
    path("segments/<int:segment_id>/delete/", views.segment_delete, name="segment_delete"),
    path("tags/", views.tags_page, name="tags"),
    path("tags/groups/", views.tag_group_create, name="tag_group_create"),
    path("tags/groups/<int:group_id>/rename/", views.tag_group_rename, name="tag_group_rename"),
    path("tags/groups/<int:group_id>/delete/", views.tag_group_delete, name="tag_group_delete"),
    path("tags/groups/<int:group_id>/tags/", views.tag_create, name="tag_create"),
    path("tags/<int:tag_id>/rename/", views.tag_rename, name="tag_rename"),
    path("tags/<int:tag_id>/delete/", views.tag_delete, name="tag_delete"),
    path("tags/upload/", views.tag_upload, name="tag_upload"),
    path("contacts/<int:contact_id>/tags/", views.contact_tags, name="contact_tags"),
    path("contacts/<int:contact_id>/tags/add/", views.contact_tag_add, name="contact_tag_add"),
    path(
        "contacts/<int:contact_id>/tags/<int:tag_id>/remove/",
        views.contact_tag_remove,
        name="contact_tag_remove",
    ),
]

urlpatterns += [
    path("layers/", layers_views.layers_home, name="layers"),
    path("layers/flow/", layers_views.layers_flow, name="layers_flow"),
    path("layers/config/", layers_views.layers_config, name="layers_config"),
    path("layers/recompute/", layers_views.layers_recompute, name="layers_recompute"),
    path("layers/status/<str:task_id>/", layers_views.layers_status, name="layers_status"),
    path("layers/<str:kind>/<str:code>/", layers_views.layer_contacts, name="layer_contacts"),
]
