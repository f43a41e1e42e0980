"""The Django app: tells fire which Django descriptors always yield references."""

from __future__ import annotations

from django.apps import AppConfig


class DjfireConfig(AppConfig):
    name = "djfire"
    verbose_name = "fire test server"

    def ready(self) -> None:
        from fire_origin import foreign_fire

        if foreign_fire() is not None:
            # Google's python-fire took the name `fire`: our submodules may be missing, so
            # register nothing; runfireserver refuses to start with the fix, and the
            # project's other commands still work.
            return
        from django.db.models import QuerySet
        from django.db.models.fields.related_descriptors import (
            ReverseManyToOneDescriptor,  # ManyToManyDescriptor subclasses it
        )
        from django.db.models.manager import ManagerDescriptor

        from fire.operations import register_materialized_iterable
        from fire.shapes import register_reference_descriptor

        # `User.objects` and `user.groups` are managers: safe to pipeline, and their
        # class is known, so `user.groups.count` is known to be a method too.
        register_reference_descriptor(ManagerDescriptor, lambda d: type(d.manager))
        register_reference_descriptor(ReverseManyToOneDescriptor, lambda d: d.related_manager_cls)
        # Iterating a queryset fetches every row anyway: send them in one reply.
        register_materialized_iterable(QuerySet)
