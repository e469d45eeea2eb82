from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from summaries.api.monitoring import metrics_view

urlpatterns = [
    path("", RedirectView.as_view(url="/api/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/", include("summaries.api.urls")),
    path("metrics", metrics_view, name="metrics"),
]
