"""URL wiring: the admin site, the REST API and its schema/docs."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/", include("labeling.api.io_urls")),
    path("api/", include("labeling.api.urls")),
    path("api/", include("ml.api.urls")),
    path("dicomweb/", include("labeling.api.dicomweb_urls")),
    path("", include("labeling.web.urls")),
]

handler404 = "labeling.api.errors.page_not_found"
handler500 = "labeling.api.errors.server_error"
