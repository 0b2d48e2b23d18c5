from django.urls import path

from rtbank.rules import views

urlpatterns = [
    path("projects/<str:code>/rules/", views.rule_list, name="project_rules"),
    path("projects/<str:code>/rules/new/", views.rule_edit, name="project_rule_new"),
    path("projects/<str:code>/rules/<int:pk>/", views.rule_detail, name="project_rule"),
    path("projects/<str:code>/rules/<int:pk>/edit/", views.rule_edit, name="project_rule_edit"),
    path("projects/<str:code>/rules/<int:pk>/dry-run/", views.rule_dry_run, name="project_rule_dry_run"),
    path("projects/<str:code>/rules/<int:pk>/apply/", views.rule_apply, name="project_rule_apply"),
    path("projects/<str:code>/rules/<int:pk>/delete/", views.rule_delete, name="project_rule_delete"),
    path("projects/<str:code>/outbox/", views.outbox_list, name="project_outbox"),
    path("projects/<str:code>/send/", views.project_send, name="project_send"),
    path(
        "projects/<str:code>/subjects/<str:subject_id>/rule-firings/",
        views.subject_firings,
        name="subject_firings",
    ),
    path("rules/site/", views.rule_list, name="site_rules"),
    path("rules/site/new/", views.rule_edit, name="site_rule_new"),
    path("rules/site/<int:pk>/", views.rule_detail, name="site_rule"),
    path("rules/site/<int:pk>/edit/", views.rule_edit, name="site_rule_edit"),
    path("rules/site/<int:pk>/dry-run/", views.rule_dry_run, name="site_rule_dry_run"),
    path("rules/site/<int:pk>/apply/", views.rule_apply, name="site_rule_apply"),
    path("rules/site/<int:pk>/delete/", views.rule_delete, name="site_rule_delete"),
    path("outbox/", views.outbox_list, name="outbox"),
    path("outbox/<int:pk>/resubmit/", views.forward_resubmit, name="forward_resubmit"),
    path("cleanup/", views.cleanup_report, name="cleanup_report"),
]
