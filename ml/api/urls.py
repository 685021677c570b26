from django.urls import path

from ml.api import views as v

P = "projects/<int:project_id>"

urlpatterns = [
    path(f"{P}/training/runs/", v.TrainingRunListApi.as_view(), name="training-run-list"),
    path(f"{P}/training/runs/start/", v.TrainingRunStartApi.as_view(), name="training-run-start"),
    path(f"{P}/training/runs/<int:run_id>/", v.TrainingRunDetailApi.as_view(), name="training-run-detail"),
    path(
        f"{P}/training/runs/<int:run_id>/cancel/",
        v.TrainingRunCancelApi.as_view(),
        name="training-run-cancel",
    ),
    path(f"{P}/training/policies/", v.TrainingPolicyListApi.as_view(), name="training-policy-list"),
    path(
        f"{P}/training/policies/<str:kind>/update/",
        v.TrainingPolicyUpdateApi.as_view(),
        name="training-policy-update",
    ),
    path(f"{P}/models/", v.ModelVersionListApi.as_view(), name="model-version-list"),
    path(
        f"{P}/models/<int:version_id>/promote/",
        v.ModelVersionPromoteApi.as_view(),
        name="model-version-promote",
    ),
    path(
        f"{P}/cases/<int:case_id>/predictions/",
        v.CasePredictionListApi.as_view(),
        name="case-prediction-list",
    ),
]
