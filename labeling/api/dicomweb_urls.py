"""Routes of Concord's DICOMweb endpoint, mounted at ``/dicomweb/`` (PS3.18 resource paths, no trailing slash)."""

from django.urls import path, register_converter

from labeling.api import dicomweb_views as v

#: What the routes accept as a UID and as a frame list; the frames fast path matches with the same patterns.
UID_REGEX = r"[0-9]+(?:\.[0-9]+)*"
FRAMES_REGEX = r"[0-9]+(?:,[0-9]+)*"


class UidConverter:
    regex = UID_REGEX

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class FramesConverter:
    regex = FRAMES_REGEX

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(UidConverter, "uid")
register_converter(FramesConverter, "frames")

S = "studies/<uid:study_uid>"
SE = f"{S}/series/<uid:series_uid>"
I = f"{SE}/instances/<uid:sop_uid>"  # noqa: E741

#: The frames route as one pattern over PATH_INFO (for the fast path, which runs before Django's resolver).
FRAMES_PATH = (
    rf"/dicomweb/studies/({UID_REGEX})/series/({UID_REGEX})/instances/({UID_REGEX})/frames/({FRAMES_REGEX})"
)

urlpatterns = [
    path("studies", v.QidoStudiesApi.as_view(), name="dicomweb-studies"),
    path("series", v.QidoSeriesApi.as_view(), name="dicomweb-all-series"),
    path("instances", v.QidoInstancesApi.as_view(), name="dicomweb-all-instances"),
    path(f"{S}/series", v.QidoSeriesApi.as_view(), name="dicomweb-series"),
    path(f"{S}/instances", v.QidoInstancesApi.as_view(), name="dicomweb-study-instances"),
    path(f"{SE}/instances", v.QidoInstancesApi.as_view(), name="dicomweb-instances"),
    path(S, v.RetrieveApi.as_view(), name="dicomweb-study"),
    path(SE, v.RetrieveApi.as_view(), name="dicomweb-series-retrieve"),
    path(I, v.RetrieveApi.as_view(), name="dicomweb-instance"),
    path(f"{S}/metadata", v.MetadataApi.as_view(), name="dicomweb-study-metadata"),
    path(f"{SE}/metadata", v.MetadataApi.as_view(), name="dicomweb-series-metadata"),
    path(f"{I}/metadata", v.MetadataApi.as_view(), name="dicomweb-instance-metadata"),
    path(f"{I}/frames/<frames:frames>", v.FramesApi.as_view(), name="dicomweb-frames"),
    path(f"{I}/rendered", v.RenderedApi.as_view(), name="dicomweb-rendered"),
    path(f"{I}/frames/<frames:frames>/rendered", v.RenderedApi.as_view(), name="dicomweb-frame-rendered"),
]
