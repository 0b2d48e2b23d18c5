from django.urls import path

from rtbank.audits import views

urlpatterns = [
    path("projects/<str:code>/audits/", views.audit_list, name="audit_list"),
    path("projects/<str:code>/audits/new/", views.audit_new, name="audit_new"),
    path("projects/<str:code>/audits/<int:pk>/", views.audit_detail, name="audit_detail"),
    path("projects/<str:code>/audits/<int:pk>/copies/", views.audit_copies, name="audit_copies"),
    path(
        "projects/<str:code>/audits/<int:pk>/participants/<int:participant>/download/",
        views.audit_download,
        name="audit_download",
    ),
    path("projects/<str:code>/audits/<int:pk>/returns/", views.audit_returns, name="audit_returns"),
    path("projects/<str:code>/audits/<int:pk>/report/", views.audit_report, name="audit_report"),
    path("projects/<str:code>/audits/<int:pk>/report.csv", views.audit_report_csv, name="audit_report_csv"),
    path("projects/<str:code>/audits/<int:pk>/close/", views.audit_close, name="audit_close"),
]
