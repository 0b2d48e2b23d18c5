from django.urls import path

from rtbank.harvest import views

urlpatterns = [
    path("harvest/runs/", views.runs, name="harvest_runs"),
    path("harvest/runs/<int:pk>/", views.run_page, name="harvest_run"),
    path("harvest/runs/<int:pk>/manifest.csv", views.run_csv, name="harvest_run_csv"),
]
