from django.urls import include, path

# Each area owns its URLs; the web app (home, login, inbox, health) comes last.
urlpatterns = [
    path("", include("rtbank.projects.urls")),
    path("", include("rtbank.notifications.urls")),
    path("", include("rtbank.rules.urls")),
    path("", include("rtbank.analysis.urls")),
    path("", include("rtbank.harvest.urls")),
    path("", include("rtbank.audits.urls")),
    path("", include("rtbank.viewer.urls")),
    path("", include("rtbank.web.urls")),
]
