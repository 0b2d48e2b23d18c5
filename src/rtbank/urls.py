from django.contrib import admin
from django.urls import include, path

# Each area owns its URLs; the web app (home, login, inbox, health) comes last.
urlpatterns = [
    # The admin holds no patient-data model: institutions, nodes, work rows, the event log.
    path("admin/", admin.site.urls),
    path("", include("rtbank.projects.urls")),
    path("", include("rtbank.notifications.urls")),
    path("", include("rtbank.rules.urls")),
    path("", include("rtbank.analysis.urls")),
    path("", include("rtbank.harvest.urls")),
    path("", include("rtbank.audits.urls")),
    path("", include("rtbank.viewer.urls")),
    path("", include("rtbank.web.urls")),
]
