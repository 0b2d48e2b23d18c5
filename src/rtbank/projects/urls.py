from django.urls import path

from rtbank.projects.views import exports, manage, pages

# A subject ID or a UID never contains "/": the plain string converter is enough (and is checked by Access).
urlpatterns = [
    path("projects/", pages.project_list, name="project_list"),
    path("projects/<str:code>/", pages.project_detail, name="project_detail"),
    path("projects/<str:code>/subjects/<str:subject_id>/", pages.subject_detail, name="project_subject"),
    path("projects/<str:code>/plans/<str:uid>/", pages.plan_detail, name="project_plan"),
    path("projects/<str:code>/plans.csv", exports.plans_csv, name="project_plans_csv"),
    path("projects/<str:code>/export/", exports.project_export, name="project_export"),
    path("projects/<str:code>/members/", manage.project_members, name="project_members"),
    path("projects/<str:code>/reuse/", manage.project_reuse, name="project_reuse"),
    path("exports/", exports.export_list, name="exports"),
    path("exports/<int:pk>/", exports.export_detail, name="export_detail"),
    path("exports/<int:pk>/download/", exports.export_download, name="export_download"),
]
