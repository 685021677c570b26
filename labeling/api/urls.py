"""The REST API's routes. Reads are GET; each write is a POST to its own operation."""

from django.urls import path

from labeling.api import auth_views as a
from labeling.api import consensus_views as c
from labeling.api import reader_study_views as rs
from labeling.api import reader_views as r
from labeling.api import views as v

urlpatterns = [
    path("auth/csrf/", a.CsrfApi.as_view(), name="auth-csrf"),
    path("auth/login/", a.LoginApi.as_view(), name="auth-login"),
    path("auth/logout/", a.LogoutApi.as_view(), name="auth-logout"),
    path("auth/me/", a.MeApi.as_view(), name="auth-me"),
    path("auth/token/", a.TokenApi.as_view(), name="auth-token"),
    path("schemes/", v.SchemeListApi.as_view(), name="scheme-list"),
    path("studies/", v.StudyListApi.as_view(), name="study-list"),
    path("studies/register/", v.StudyRegisterApi.as_view(), name="study-register"),
    path("projects/", v.ProjectListApi.as_view(), name="project-list"),
    path("projects/create/", v.ProjectCreateApi.as_view(), name="project-create"),
    path("projects/<int:project_id>/", v.ProjectDetailApi.as_view(), name="project-detail"),
    path("projects/<int:project_id>/update/", v.ProjectUpdateApi.as_view(), name="project-update"),
    path("projects/<int:project_id>/delete/", v.ProjectDeleteApi.as_view(), name="project-delete"),
    path("projects/<int:project_id>/members/", v.MembershipListApi.as_view(), name="member-list"),
    path("projects/<int:project_id>/members/add/", v.MembershipAddApi.as_view(), name="member-add"),
    path(
        "projects/<int:project_id>/members/<int:membership_id>/remove/",
        v.MembershipRemoveApi.as_view(),
        name="member-remove",
    ),
    path("projects/<int:project_id>/cases/", v.CaseListApi.as_view(), name="case-list"),
    path("projects/<int:project_id>/cases/create/", v.CaseCreateApi.as_view(), name="case-create"),
    path("projects/<int:project_id>/cases/<int:case_id>/", v.CaseDetailApi.as_view(), name="case-detail"),
    path(
        "projects/<int:project_id>/cases/<int:case_id>/update/", v.CaseUpdateApi.as_view(), name="case-update"
    ),
    path(
        "projects/<int:project_id>/cases/<int:case_id>/delete/", v.CaseDeleteApi.as_view(), name="case-delete"
    ),
    path("projects/<int:project_id>/assignments/", v.AssignmentListApi.as_view(), name="assignment-list"),
    path(
        "projects/<int:project_id>/assignments/generate/",
        v.AssignmentGenerateApi.as_view(),
        name="assignment-generate",
    ),
    path("projects/<int:project_id>/worklist/", r.WorklistApi.as_view(), name="worklist"),
    path("projects/<int:project_id>/worklist/next/", r.WorklistNextApi.as_view(), name="worklist-next"),
    path("assignments/<slug:key>/", r.AssignmentDetailApi.as_view(), name="assignment-detail"),
    path("assignments/<slug:key>/reading/", r.ReadingSubmitApi.as_view(), name="reading-submit"),
    path("assignments/<slug:key>/draft/", r.DraftDetailApi.as_view(), name="draft-detail"),
    path("assignments/<slug:key>/ai/", r.AssignmentAiApi.as_view(), name="assignment-ai"),
    path("assignments/<slug:key>/draft/save/", r.DraftSaveApi.as_view(), name="draft-save"),
    path(
        "assignments/<slug:key>/readings/<int:version>/", r.ReadingDetailApi.as_view(), name="reading-detail"
    ),
    path(
        "assignments/<slug:key>/readings/<int:version>/correct/",
        r.ReadingCorrectApi.as_view(),
        name="reading-correct",
    ),
    path("readings/", r.ReadingListApi.as_view(), name="reading-list"),
    path("audit/", v.AuditListApi.as_view(), name="audit-list"),
    path("projects/<int:project_id>/reader-study/", rs.ReaderStudyApi.as_view(), name="reader-study"),
    path(
        "projects/<int:project_id>/reader-study.csv", rs.ReaderStudyCsvApi.as_view(), name="reader-study-csv"
    ),
    path(
        "projects/<int:project_id>/reader-study/report.html",
        rs.ReaderStudyReportApi.as_view(),
        name="reader-study-report",
    ),
    path("projects/<int:project_id>/consensus/", c.ConsensusListApi.as_view(), name="consensus-list"),
    path("projects/<int:project_id>/consensus/refit/", c.ConsensusRefitApi.as_view(), name="consensus-refit"),
    path(
        "projects/<int:project_id>/consensus/<int:run_id>/readers/",
        c.ConsensusReadersApi.as_view(),
        name="consensus-readers",
    ),
    path(
        "projects/<int:project_id>/adjudication/queue/",
        c.AdjudicationQueueApi.as_view(),
        name="adjudication-queue",
    ),
    path(
        "projects/<int:project_id>/adjudication/items/<int:case_id>/<str:joint>/<str:region>/<str:lesion>/",
        c.AdjudicationItemApi.as_view(),
        name="adjudication-item",
    ),
    path(
        "projects/<int:project_id>/adjudication/record/",
        c.AdjudicationRecordApi.as_view(),
        name="adjudication-record",
    ),
    path(
        "projects/<int:project_id>/adjudication/cases/",
        c.AdjudicationCasesApi.as_view(),
        name="adjudication-cases",
    ),
    path(
        "projects/<int:project_id>/adjudication/contours/<int:case_id>/<str:joint>/<int:slice_index>/",
        c.ContourDisputeApi.as_view(),
        name="contour-dispute",
    ),
    path(
        "projects/<int:project_id>/adjudication/contours/record/",
        c.ContourAdjudicationRecordApi.as_view(),
        name="contour-adjudication-record",
    ),
    path(
        "projects/<int:project_id>/adjudication/contours/", c.ContourQueueApi.as_view(), name="contour-queue"
    ),
    path(
        "projects/<int:project_id>/contours/reliability/",
        c.ContourReliabilityApi.as_view(),
        name="contour-reliability",
    ),
    path("projects/<int:project_id>/agreement/", c.AgreementApi.as_view(), name="agreement"),
    path("projects/<int:project_id>/agreement.csv", c.AgreementCsvApi.as_view(), name="agreement-csv"),
    path("projects/<int:project_id>/calibration/", c.CalibrationApi.as_view(), name="calibration"),
]
