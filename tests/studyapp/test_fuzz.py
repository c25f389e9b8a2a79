"""Property-based fuzzing (Hypothesis): no input makes a participant or API endpoint answer 5xx.

Paths, query parameters and form fields are drawn from arbitrary text (NUL bytes, lone
surrogates, control characters, very long values, other participants' ids) and sent through
the whole middleware stack. Every answer must be below 500; a crash inside a view is raised
by the test client and fails the test with its traceback. About 1,100 requests per run.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from studyapp.exports import EXPORTS
from studyapp.models import ListPreference, Participant, Request, Study
from studyapp.tasks import rank_request

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=350,
    deadline=None,
    derandomize=True,  # the same inputs in every CI run; a failure is reproducible
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
texts = st.text(max_size=400)  # any unicode, NUL and surrogates included
segments = st.one_of(texts, st.sampled_from(["", "0", "-1", "99999999999999999999", "%00", "..", "a/b"]))
forms = st.dictionaries(st.sampled_from(["text", "label", "slot", "agree", "list", "q1", "x"]) | texts, texts)

PARTICIPANT_POSTS = [
    "consent/", "picks/{n}/", "onboarding/", "instructions/", "requests/", "requests/{n}/retry/",
    "requests/{n}/preference/", "requests/{n}/next/", "judge/", "questionnaire/",
]  # fmt: skip
PARTICIPANT_GETS = ["", "requests/{n}/status/", "return/"]


def _encode(value: str) -> str:
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


@pytest.fixture
def ready(participant: Participant) -> Participant:
    """A participant with a ranked request and a list preference, so every export kind has rows."""
    request = Request.objects.create(participant=participant, number=1, text="black shoes", seed=5)
    rank_request(request.pk)
    study = participant.study
    Study.objects.filter(pk=study.pk).update(ask_list_preference=True)  # side by side by default
    ListPreference.objects.create(request=request, list_label="A")
    return participant


def _no_server_error(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code < 500, (response.status_code, response.content[:300])


@FUZZ
@given(
    path=st.sampled_from(PARTICIPANT_GETS + PARTICIPANT_POSTS),
    n=segments,
    params=st.dictionaries(texts, texts, max_size=4),
    form=forms,
    own_token=st.booleans(),
    htmx=st.booleans(),
)
def test_participant_endpoints_never_answer_5xx(
    ready: Participant,
    client: Client,
    path: str,
    n: str,
    params: dict,
    form: dict,
    own_token: bool,
    htmx: bool,
) -> None:
    token = ready.token if own_token else "not-a-token"
    url = f"/p/{token}/" + path.replace("{n}", _encode(n))
    query = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in params.items())
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    if path in PARTICIPANT_GETS:
        response = client.get(url + ("?" + query if query else ""), **headers)
    else:
        data = {k.encode("utf-8", "surrogatepass").decode("utf-8", "replace"): v for k, v in form.items()}
        response = client.post(url, data, **headers)
    _no_server_error(response)


@FUZZ
@given(token=segments, params=st.dictionaries(texts, texts, max_size=4), ua=texts)
def test_study_link_never_answers_5xx(
    study: Study, client: Client, token: str, params: dict, ua: str
) -> None:
    base = study.token if token == "" else token
    query = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in params.items())
    user_agent = ua.encode("latin-1", "replace").decode("latin-1")  # what a WSGI header can carry
    response = client.get(f"/s/{_encode(base)}/" + ("?" + query if query else ""), HTTP_USER_AGENT=user_agent)
    _no_server_error(response)


def _api_paths() -> list[str]:
    return [
        "/api/studies/", "/api/studies/{id}/", "/api/studies/{id}/participants/",
        "/api/studies/{id}/judgements/", "/api/studies/{id}/export/", "/api/studies/{id}/report/",
        "/api/schema/", "/researcher/", "/researcher/studies/{id}/", "/researcher/studies/{id}/export/{kind}.csv",
    ]  # fmt: skip


@FUZZ
@given(
    path=st.sampled_from(_api_paths()),
    ident=segments,
    kind=st.sampled_from(list(EXPORTS)) | segments,  # every real export kind, preferences included
    params=st.dictionaries(
        st.sampled_from(["kind", "page", "format", "page_size"]) | texts,
        st.sampled_from(list(EXPORTS)) | texts,
        max_size=3,
    ),
)
def test_api_and_researcher_endpoints_never_answer_5xx(
    ready: Participant, admin_client: Client, path: str, ident: str, kind: str, params: dict
) -> None:
    study_id = str(ready.study_id) if ident == "" else ident
    url = path.replace("{id}", _encode(study_id)).replace("{kind}", _encode(kind))
    query = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in params.items())
    response = admin_client.get(url + ("?" + query if query else ""))
    _no_server_error(response)
