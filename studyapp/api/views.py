"""Read-only API views. Every view requires a staff user (settings: IsAdminUser by default)."""

from __future__ import annotations

from django.http import Http404, StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request as ApiRequest
from rest_framework.response import Response

from studyapp import exports, reporting
from studyapp.api.serializers import JudgementSerializer, ParticipantSerializer, StudySerializer
from studyapp.models import Judgement, Participant, Study

GROUP_PARAMETER = OpenApiParameter(
    "group", str, enum=list(Participant.Origin.values), default=Participant.Origin.REAL.value,
    description="Which participants: real ones (default), pilot runs or simulated participants.",
)  # fmt: skip


def _group(request: ApiRequest) -> str:
    """The participant origin asked for; real by default, so test runs never mix into real data."""
    group = request.query_params.get("group", Participant.Origin.REAL.value)
    if group not in Participant.Origin.values:
        raise serializers.ValidationError(
            {"group": f"unknown group; one of {', '.join(Participant.Origin.values)}"}
        )
    return group


class StudyViewSet(viewsets.ReadOnlyModelViewSet):
    """Studies, with their participants, judgements, analysis report and CSV exports."""

    queryset = Study.objects.prefetch_related("systems").order_by("pk")
    serializer_class = StudySerializer

    @extend_schema(parameters=[GROUP_PARAMETER], responses=ParticipantSerializer(many=True))
    @action(detail=True)
    def participants(self, request: ApiRequest, pk: str | None = None) -> Response:
        group = _group(request)
        study = self.get_object()
        page = self.paginate_queryset(study.participants.filter(origin=group).order_by("number"))
        return self.get_paginated_response(ParticipantSerializer(page, many=True).data)

    @extend_schema(parameters=[GROUP_PARAMETER], responses=JudgementSerializer(many=True))
    @action(detail=True)
    def judgements(self, request: ApiRequest, pk: str | None = None) -> Response:
        group = _group(request)
        study = self.get_object()
        queryset = (
            Judgement.objects.filter(participant__study=study, participant__origin=group)
            .select_related("participant", "slot__request", "slot__item", "slot__team")
            .order_by("pk")
        )
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(JudgementSerializer(page, many=True).data)

    @extend_schema(responses={200: dict})
    @action(detail=True)
    def report(self, request: ApiRequest, pk: str | None = None) -> Response:
        return Response(reporting.report_dict(self.get_object()))

    @extend_schema(
        parameters=[OpenApiParameter("kind", str, enum=list(exports.EXPORTS), default="judgements")],
        responses={(200, "text/csv"): str},
    )
    @action(detail=True, url_path="export")
    def export(self, request: ApiRequest, pk: str | None = None) -> StreamingHttpResponse:
        kind = request.query_params.get("kind", "judgements")
        if kind not in exports.EXPORTS:
            raise Http404("unknown export kind")
        return exports.csv_response(self.get_object(), kind)
