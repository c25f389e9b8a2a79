"""URL routes: participant pages by token, researcher pages, the API and the admin."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from studyapp.api.views import StudyViewSet
from studyapp.views import media, participant, researcher

router = DefaultRouter()
router.register("studies", StudyViewSet)

participant_urls = [
    path("", participant.participant_page, name="participant"),
    path("consent/", participant.consent, name="consent"),
    path("picks/<int:item_pk>/", participant.toggle_pick, name="toggle_pick"),
    path("onboarding/", participant.finish_onboarding, name="finish_onboarding"),
    path("instructions/", participant.finish_instructions, name="finish_instructions"),
    path("requests/", participant.create_request, name="create_request"),
    path("requests/<int:number>/status/", participant.request_status, name="request_status"),
    path("requests/<int:number>/retry/", participant.retry_request, name="retry_request"),
    path("requests/<int:number>/preference/", participant.preference, name="preference"),
    path("requests/<int:number>/next/", participant.next_request, name="next_request"),
    path("judge/", participant.judge, name="judge"),
    path("questionnaire/", participant.questionnaire, name="questionnaire"),
    path("return/", participant.finish_redirect, name="finish_redirect"),
]

urlpatterns = [
    path("", media.home, name="home"),
    path("healthz", media.healthz, name="healthz"),
    path("favicon.ico", media.favicon, name="favicon"),
    path("s/<str:study_token>/", participant.join, name="join"),
    path("p/<str:token>/", include(participant_urls)),
    path("items/<int:pk>/image", media.item_image, name="item_image"),
    path("researcher/", researcher.dashboard, name="researcher_dashboard"),
    path("researcher/studies/<int:pk>/", researcher.study_detail, name="researcher_study"),
    path("researcher/studies/<int:pk>/report.html", researcher.report_download, name="researcher_report"),
    path(
        "researcher/studies/<int:pk>/figures/<str:name>.<str:fmt>",
        researcher.figure_download,
        name="researcher_figure",
    ),
    path("researcher/studies/<int:pk>/preview/", researcher.preview, name="researcher_preview"),
    path(
        "researcher/studies/<int:pk>/test-runs/delete/",
        researcher.delete_test_runs,
        name="researcher_delete_test_runs",
    ),
    path("researcher/studies/<int:pk>/export/<str:kind>.csv", researcher.export_csv, name="export_csv"),
    path("api/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api_docs"),
    path("admin/", admin.site.urls),
]

# A database outage met outside a view is answered like one inside it: 503, retry.
handler500 = "studyapp.middleware.server_error"
