from django.contrib.auth import views as auth_views
from django.urls import include, path

from siyu.console import views

app_name = "console"

urlpatterns = [
    path("", views.home, name="home"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="console/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("workspace/", views.workspace_switch, name="workspace_switch"),
    path("contacts/", views.contacts_list, name="contacts"),
    path("contacts/<int:contact_id>/", views.contact_detail, name="contact"),
    path("settings/api-keys/", views.api_keys, name="api_keys"),
    path("settings/api-keys/<int:key_id>/revoke/", views.api_key_revoke, name="api_key_revoke"),
    path("insights/", include("siyu.insights.urls")),
    path("audiences/", include("siyu.audiences.urls")),
    path("analytics/explore/", include("siyu.analytics.explore_urls")),
    path("analytics/metrics/", include("siyu.analytics.metrics_urls")),
    path("experiments/", include("siyu.experiments.urls")),
    path("messaging/", include("siyu.messaging.urls")),
    path("journeys/", include("siyu.journeys.urls")),
    path("tasks/", include("siyu.inbox.urls")),
    path("assets/plotly.min.js", views.plotly_js, name="plotly_js"),
]
