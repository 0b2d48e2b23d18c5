from django.urls import path

from rtbank.analysis.views import downloads, mapping, pages

urlpatterns = [
    path("projects/<str:code>/analysis/", pages.overview, name="analysis_overview"),
    path("projects/<str:code>/analysis/matrix/", pages.matrix, name="analysis_matrix"),
    path("projects/<str:code>/analysis/completeness/", pages.completeness, name="analysis_completeness"),
    path("projects/<str:code>/analysis/plans/", pages.plans, name="analysis_plans"),
    path("projects/<str:code>/analysis/protocol/", pages.qa, name="analysis_qa"),
    path("projects/<str:code>/analysis/mapping/", mapping.rules, name="analysis_mapping"),
    path("projects/<str:code>/analysis/mapping.csv", mapping.rules_csv, name="analysis_mapping_csv"),
    path("projects/<str:code>/analysis/metrics.csv", downloads.metrics_csv, name="analysis_metrics_csv"),
    path("projects/<str:code>/analysis/curves.csv", downloads.curves_csv, name="analysis_curves_csv"),
    path("projects/<str:code>/analysis/plans.csv", downloads.plans_csv, name="analysis_plans_csv"),
    path("projects/<str:code>/analysis/protocol.csv", downloads.qa_csv, name="analysis_qa_csv"),
    path("analysis/tg263/", mapping.tg263, name="analysis_tg263"),
]
