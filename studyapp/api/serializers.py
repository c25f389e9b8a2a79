"""Flat serializers: every field a scalar, mirroring the CSV columns."""

from __future__ import annotations

from rest_framework import serializers

from studyapp.models import Judgement, Participant, RankingSystem, Study


class RankingSystemSerializer(serializers.ModelSerializer):
    class Meta:
        model = RankingSystem
        fields = ["id", "name", "kind", "checkpoint_path", "history_weight"]


class StudySerializer(serializers.ModelSerializer):
    systems = RankingSystemSerializer(many=True, read_only=True)
    # Real participants only: pilot and simulated runs are never counted as study data.
    participants = serializers.IntegerField(source="participants.counted.count", read_only=True)

    class Meta:
        model = Study
        fields = [
            "id", "title", "slug", "status", "presentation_mode", "rating_scale", "k", "requests_per_participant",
            "onboarding_picks", "practice_request", "allow_cant_judge", "ask_list_preference", "attention_checks", "seed", "systems",
            "participants", "created_at",
        ]  # fmt: skip


class ParticipantSerializer(serializers.ModelSerializer):
    # Every row says where it came from, so pilot or simulated data is never mistaken for real data.
    is_pilot = serializers.BooleanField(read_only=True)
    is_simulated = serializers.BooleanField(read_only=True)

    class Meta:
        model = Participant
        fields = [
            "id", "number", "origin", "is_pilot", "is_simulated", "external_id", "external_study_id", "external_session_id", "phase", "consented_at",
            "created_at", "finished_at", "attention_failures",
        ]  # fmt: skip


class JudgementSerializer(serializers.ModelSerializer):
    participant_number = serializers.IntegerField(source="participant.number")
    external_id = serializers.CharField(source="participant.external_id")
    origin = serializers.CharField(source="participant.origin")
    is_pilot = serializers.BooleanField(source="participant.is_pilot")
    is_simulated = serializers.BooleanField(source="participant.is_simulated")
    request_id = serializers.IntegerField(source="slot.request_id")
    request_text = serializers.CharField(source="slot.request.text")
    is_practice = serializers.BooleanField(source="slot.request.is_practice")
    team = serializers.CharField(source="slot.team.name", default="")
    system_ranks = serializers.JSONField(source="slot.system_ranks")
    list_label = serializers.CharField(source="slot.list_label")
    displayed_position = serializers.IntegerField(source="slot.position")
    item_id = serializers.CharField(source="slot.item.external_id")
    item_title = serializers.CharField(source="slot.item.title")
    is_attention_check = serializers.BooleanField(source="slot.is_attention_check")

    class Meta:
        model = Judgement
        fields = [
            "id", "participant", "participant_number", "external_id", "origin", "is_pilot", "is_simulated", "request_id", "request_text", "is_practice",
            "team", "system_ranks", "list_label", "displayed_position", "item_id", "item_title", "label",
            "is_attention_check", "response_ms", "too_fast", "changes", "created_at", "updated_at",
        ]  # fmt: skip
