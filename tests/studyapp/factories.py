"""factory_boy factories for study objects."""

from __future__ import annotations

import factory

from studyapp.models import Participant, RankingSystem, Study


class RankingSystemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RankingSystem
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"system {n}")
    kind = RankingSystem.Kind.ZERO_SHOT


class StudyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Study
        skip_postgeneration_save = True

    title = factory.Sequence(lambda n: f"Study {n}")
    slug = factory.Sequence(lambda n: f"study-{n}")
    status = Study.Status.OPEN
    k = 4
    requests_per_participant = 2
    seed = 7

    @factory.post_generation
    def systems(self, create: bool, extracted: list[RankingSystem] | None, **kwargs: object) -> None:
        if not create:
            return
        self.systems.set(
            extracted
            or [
                RankingSystemFactory(name="Zero-shot", kind=RankingSystem.Kind.ZERO_SHOT),
                RankingSystemFactory(name="Blend", kind=RankingSystem.Kind.HISTORY_BLEND),
            ]
        )


class ParticipantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Participant

    study = factory.SubFactory(StudyFactory)
    number = factory.Sequence(lambda n: n + 1)
