from django.contrib import admin
from django.urls import include, path

from summaries.api.monitoring import metrics_view
from summaries.web import views as web

urlpatterns = [
    path("", web.home, name="home"),
    path("analytics/", web.analytics, name="analytics-page"),
    path("admin/", admin.site.urls),
    path("api/", include("summaries.api.urls")),
    path("metrics", metrics_view, name="metrics"),
]

# Valkey or the database failing outside a view (a middleware, the admin):
# the API's JSON 503, not a 500 page.
handler500 = "summaries.api.errors.server_error"
