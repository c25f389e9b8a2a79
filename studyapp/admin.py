"""Django admin: where researchers configure studies and inspect what participants did."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from studyapp import exports, launch, services
from studyapp.models import (
    Catalog,
    Item,
    Judgement,
    ListPreference,
    Participant,
    QuestionnaireItem,
    RankedList,
    RankingSystem,
    Request,
    Slot,
    Study,
)
from studyapp.models.study import new_code, new_token


@admin.register(Catalog)
class CatalogAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "source", "item_count", "version", "imported_at")
    readonly_fields = ("version", "imported_at")

    @admin.display(description="items")
    def item_count(self, obj: Catalog) -> int:
        return obj.items.count()


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ("external_id", "title", "catalog")
    list_filter = ("catalog",)
    search_fields = ("external_id", "title")


@admin.register(RankingSystem)
class RankingSystemAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "checkpoint_path", "history_weight", "probe_status")
    probe_fields = ("probe_status", "probe_checked_at", "probe_report_text")

    def get_readonly_fields(self, request: HttpRequest, obj: RankingSystem | None = None) -> tuple[str, ...]:
        # A system used by a study with participants is part of that study's locked design.
        if obj is not None and any(study.is_locked() for study in obj.studies.all()):
            return ("kind", "checkpoint_path", "history_weight", *self.probe_fields)
        return self.probe_fields

    @admin.display(description="fidelity probe")
    def probe_status(self, obj: RankingSystem) -> str:
        if obj.kind != RankingSystem.Kind.WHISPERLITE:
            return "not needed"
        return {True: "passed", False: "FAILED", None: "not run"}[obj.probe_passed]

    @admin.display(description="probe report")
    def probe_report_text(self, obj: RankingSystem) -> str:
        return format_html("<pre>{}</pre>", obj.probe_report or "(runs when a study using this system opens)")


class QuestionnaireItemInline(admin.TabularInline):
    """Questions are part of the design: read-only once the study has participants."""

    model = QuestionnaireItem
    extra = 1

    def _locked(self, obj: Study | None) -> bool:
        return obj is not None and obj.is_locked()

    def has_add_permission(self, request: HttpRequest, obj: Study | None = None) -> bool:
        return not self._locked(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Study | None = None) -> bool:
        return not self._locked(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Study | None = None) -> bool:
        return not self._locked(obj) and super().has_delete_permission(request, obj)


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ("title", "status", "presentation_mode", "participant_count", "links")
    list_filter = ("status", "presentation_mode")
    prepopulated_fields = {"slug": ("title",)}
    filter_horizontal = ("systems",)
    inlines = [QuestionnaireItemInline]
    actions = [
        "copy_study",
        "export_judgements",
        "export_preferences",
        "preview_as_participant",
        "delete_test_runs",
    ]
    readonly_fields = ("study_link", "token", "pilot_tools", "launch_checklist")
    fieldsets = (
        (None, {"fields": ("title", "slug", "status", "study_link", "pilot_tools")}),
        ("Launch checklist", {"fields": ("launch_checklist",)}),
        ("Texts", {"fields": ("consent_text", "instructions_text", "debrief_text")}),
        ("Systems and presentation", {"fields": (
            "catalog", "systems", "presentation_mode", "k", "seed", "probe_override",
        )}),
        ("Tasks", {"fields": (
            "requests_per_participant", "onboarding_picks", "onboarding_grid_size", "practice_request",
            "rating_scale", "allow_cant_judge", "ask_list_preference",
        )}),
        ("Quality control", {"fields": ("attention_checks", "attention_failures_allowed", "min_seconds_per_judgement")}),
        ("Crowd platform", {"fields": (
            "external_id_param", "external_study_param", "external_session_param",
            "completion_code", "screenout_code", "completion_url",
        )}),
    )  # fmt: skip

    def get_readonly_fields(self, request: HttpRequest, obj: Study | None = None) -> tuple[str, ...]:
        # Locked designs are shown read-only, so nobody edits a running study by accident.
        fields = tuple(self.readonly_fields)
        if obj is not None and obj.is_locked():
            fields += tuple(Study.DESIGN_FIELDS) + ("systems",)
        return fields

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:  # type: ignore[no-untyped-def]
        super().save_related(request, form, formsets, change)
        study = form.instance
        # Systems are many-to-many, so this can only be checked after they are saved.
        if study.status == Study.Status.OPEN and study.systems.count() < 2:
            Study.objects.filter(pk=study.pk).update(status=Study.Status.DRAFT)
            self.message_user(
                request, "A study compares at least two systems; it was kept as a draft.", messages.ERROR
            )
        elif study.status == Study.Status.OPEN and (not change or "status" in form.changed_data):
            # The launch checklist first (can it run at all?), then whether WhisperLite listens.
            if self._refuse_to_open_unless_ready(request, study):
                self._check_fidelity(request, study)

    def _refuse_to_open_unless_ready(self, request: HttpRequest, study: Study) -> bool:
        """Opening runs the launch checklist; a blocking failure keeps the study a draft (False)."""
        failures = launch.blocking_failures(launch.launch_checklist(study))
        if failures:
            Study.objects.filter(pk=study.pk).update(status=Study.Status.DRAFT)
            problems = "; ".join(f"{c.name}: {c.detail}" for c in failures)
            self.message_user(
                request,
                f"The study was kept as a draft; the launch checklist failed: {problems}",
                messages.ERROR,
            )
            return False
        return True

    def _check_fidelity(self, request: HttpRequest, study: Study) -> None:
        """Keep a study in draft while a WhisperLite system fails the request-fidelity probe."""
        from studyapp.fidelity_probe import failing_systems

        failing = failing_systems(study)
        if not failing:
            return
        names = ", ".join(s.name for s in failing)
        if study.probe_override:
            self.message_user(
                request,
                f"Opened despite a failed request-fidelity probe ({names}), as the override asks: this "
                "study measures a system that overrides what participants request.",
                messages.WARNING,
            )
            return
        Study.objects.filter(pk=study.pk).update(status=Study.Status.DRAFT)
        reasons = "; ".join(
            line.strip("- ")
            for s in failing
            for line in s.probe_report.splitlines()
            if line.startswith("  - ")
        )
        self.message_user(
            request,
            f"Kept as a draft: {names} failed the request-fidelity probe (its history overrides what "
            f"participants ask for: {reasons[:600]}). Retrain the checkpoint, or tick 'open despite a "
            "failed fidelity probe' if that is what you mean to study. The report is on the ranking system's page.",
            messages.ERROR,
        )

    @admin.display(description="participants")
    def participant_count(self, obj: Study) -> int:
        return obj.participants.counted().count()

    @admin.display(description="checks")
    def launch_checklist(self, obj: Study) -> str:
        """Drafts show the full checklist (systems are loaded for real); open studies passed it to open."""
        if obj.pk is None:
            return "(save the study first; the checklist runs on saved drafts)"
        if obj.status == Study.Status.OPEN:
            estimate = launch.estimate_duration(obj)
            return format_html("Open. Estimated duration per participant: {}.", str(estimate))
        rows = format_html_join(
            "",
            '<tr class="{}"><td>{}</td><th scope="row">{}</th><td>{}</td></tr>',
            (
                (
                    "ok" if c.ok else ("fail" if c.blocking else "advice"),
                    "✔ ok" if c.ok else ("✘ fix" if c.blocking else "! advice"),
                    c.name,
                    c.detail,
                )
                for c in launch.launch_checklist(obj)
            ),
        )
        return format_html(
            '<table id="launch-checklist"><tbody>{}</tbody></table>'
            '<div class="help">Setting the status to Open runs these checks again; any "fix" keeps the study '
            "a draft.</div>",
            rows,
        )

    @admin.display(description="pilot")
    def pilot_tools(self, obj: Study) -> str:
        """Links, not submit buttons: a submit button here would be the form's default, so Enter
        in a field would start a pilot (or delete data) and drop the edits. Both links open a page
        that asks before acting."""
        if obj.pk is None:
            return "(save the study first)"
        test_runs = obj.participants.test_runs().count()
        return format_html(
            '<a class="button" id="pilot-preview" href="{}" target="_blank">Preview as participant (pilot)</a> '
            '<a class="button" id="pilot-delete" href="{}">Delete pilot and simulated data ({})</a>'
            '<div class="help">A pilot runs the real flow with the live systems; it never locks the design '
            "and is left out of the analysis.</div>",
            reverse("researcher_preview", args=[obj.pk]),
            reverse("researcher_delete_test_runs", args=[obj.pk]),
            test_runs,
        )

    @admin.action(description="Preview the selected study as a pilot participant", permissions=["change"])
    def preview_as_participant(self, request: HttpRequest, queryset: QuerySet[Study]) -> HttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one study to preview.", messages.WARNING)
            return None
        pilot = services.do_join_test_run(
            queryset.get(), Participant.Origin.PILOT, request.META.get("HTTP_USER_AGENT", "")
        )
        return HttpResponseRedirect(reverse("participant", args=[pilot.token]))

    @admin.action(
        description="Delete pilot and simulated participants of the selected studies", permissions=["delete"]
    )
    def delete_test_runs(self, request: HttpRequest, queryset: QuerySet[Study]) -> None:
        deleted = sum(services.delete_test_runs(study) for study in queryset)
        self.message_user(
            request,
            f"Deleted {deleted} pilot/simulated participants; real data is untouched.",
            messages.SUCCESS,
        )

    @admin.display(description="study link")
    def study_link(self, obj: Study) -> str:
        if obj.pk is None:
            return "(saved studies get a link)"
        url = reverse("join", args=[obj.token])
        return format_html('<a href="{}">{}</a> (append ?PROLIFIC_PID=... for crowd platforms)', url, url)

    @admin.display(description="")
    def links(self, obj: Study) -> str:
        return format_html(
            '<a href="{}">progress &amp; report</a> · <a href="{}">judgements.csv</a>',
            reverse("researcher_study", args=[obj.pk]),
            reverse("export_csv", args=[obj.pk, "judgements"]),
        )

    @admin.action(description="Copy selected studies (new draft with the same design)")
    def copy_study(self, request: HttpRequest, queryset: QuerySet[Study]) -> None:
        for study in queryset:
            with transaction.atomic():
                systems = list(study.systems.all())
                questions = list(study.questionnaire_items.all())
                study.pk = None
                study.title = f"{study.title} (copy)"
                study.slug = f"{study.slug}-copy-{new_code().lower()}"
                study.token = new_token()
                study.status = Study.Status.DRAFT
                study.completion_code, study.screenout_code = new_code(), new_code()
                study.save()
                study.systems.set(systems)
                for q in questions:
                    q.pk, q.study = None, study
                    q.save()
        self.message_user(request, "Copied. The copies are drafts you can edit.", messages.SUCCESS)

    def _export(self, request: HttpRequest, queryset: QuerySet[Study], kind: str) -> HttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one study to export.", messages.WARNING)
            return None
        return exports.csv_response(queryset.get(), kind)

    @admin.action(description="Export judgements (CSV) of the selected study")
    def export_judgements(self, request: HttpRequest, queryset: QuerySet[Study]) -> HttpResponse | None:
        return self._export(request, queryset, "judgements")

    @admin.action(description="Export list preferences (CSV) of the selected study")
    def export_preferences(self, request: HttpRequest, queryset: QuerySet[Study]) -> HttpResponse | None:
        return self._export(request, queryset, "preferences")


class ReadOnlyAdmin(admin.ModelAdmin):
    """Participant data is evidence: researchers inspect it here but never edit it."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Participant)
class ParticipantAdmin(ReadOnlyAdmin):
    list_display = (
        "number",
        "study",
        "external_id",
        "condition",
        "origin",
        "phase",
        "attention_failures",
        "created_at",
        "finished_at",
    )
    list_filter = ("study", "origin", "phase")
    search_fields = ("external_id",)


class RankedListInline(admin.TabularInline):
    model = RankedList
    extra = 0
    can_delete = False
    readonly_fields = ("system", "version", "latency_ms", "encode_ms", "item_ids", "scores")


@admin.register(Request)
class RequestAdmin(ReadOnlyAdmin):
    list_display = ("pk", "participant", "number", "is_practice", "status", "text", "created_at", "ready_at")
    list_filter = ("status", "participant__study", "is_practice")
    search_fields = ("text",)
    inlines = [RankedListInline]


@admin.register(RankedList)
class RankedListAdmin(ReadOnlyAdmin):
    list_display = ("request", "system", "version", "latency_ms", "encode_ms")
    list_filter = ("request__participant__study", "system")


@admin.register(Slot)
class SlotAdmin(ReadOnlyAdmin):
    list_display = ("request", "list_label", "position", "item", "team", "is_attention_check")
    list_filter = ("request__participant__study",)


@admin.register(Judgement)
class JudgementAdmin(ReadOnlyAdmin):
    list_display = ("participant", "slot", "label", "response_ms", "too_fast", "changes", "updated_at")
    list_filter = ("participant__study", "too_fast")


@admin.register(ListPreference)
class ListPreferenceAdmin(ReadOnlyAdmin):
    """'Which list is better?' answers, unblinded: the displayed label and the system behind it."""

    list_display = ("request", "participant", "list_label_shown", "system", "updated_at")
    list_filter = ("request__participant__study", "system")
    list_select_related = ("request__participant__study", "system")

    @admin.display(description="participant")
    def participant(self, obj: ListPreference) -> Participant:
        return obj.request.participant

    @admin.display(description="chosen list")
    def list_label_shown(self, obj: ListPreference) -> str:
        return f"List {obj.list_label}" if obj.list_label else "No difference"
