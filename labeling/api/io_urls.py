"""Routes of imports and exports, under ``/api/`` (the role matrix test covers every include there)."""

from django.urls import path

from labeling.api import io_views as v

urlpatterns = [
    path("projects/<int:project_id>/imports/", v.ImportListApi.as_view(), name="import-list"),
    path("projects/<int:project_id>/imports/upload/", v.ImportUploadApi.as_view(), name="import-upload"),
    path(
        "projects/<int:project_id>/imports/dicomweb/", v.ImportDicomwebApi.as_view(), name="import-dicomweb"
    ),
    path(
        "projects/<int:project_id>/imports/<int:job_id>/", v.ImportDetailApi.as_view(), name="import-detail"
    ),
    path(
        "projects/<int:project_id>/exports/readings.csv",
        v.ExportReadingsCsvApi.as_view(),
        name="export-readings-csv",
    ),
    path(
        "projects/<int:project_id>/exports/consensus.csv",
        v.ExportConsensusCsvApi.as_view(),
        name="export-consensus-csv",
    ),
    path(
        "projects/<int:project_id>/exports/adjudications.csv",
        v.ExportAdjudicationsCsvApi.as_view(),
        name="export-adjudications-csv",
    ),
    path("projects/<int:project_id>/exports/sr/", v.ExportSrApi.as_view(), name="export-sr"),
    path(
        "projects/<int:project_id>/deidentification/",
        v.DeidentificationMappingApi.as_view(),
        name="deidentification-mapping",
    ),
]
