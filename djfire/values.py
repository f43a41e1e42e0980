"""Which Django values always yield references, and which are read whole: fire's value rules.

runfireserver gives them to its `fire.Server`; they are per server, so nothing is
registered when Django starts.
"""

from __future__ import annotations

from fire.extensions import ValueRules

__all__ = ["django_value_rules"]


def django_value_rules() -> ValueRules:
    """Managers are references, and iterating a queryset fetches every row anyway.

    `User.objects` and `user.groups` are managers: safe to pipeline, and their class is
    known, so `user.groups.count` is known to be a method too. A queryset's rows travel
    in one reply.
    """
    from django.db.models import QuerySet
    from django.db.models.fields.related_descriptors import (
        ReverseManyToOneDescriptor,  # ManyToManyDescriptor subclasses it
    )
    from django.db.models.manager import ManagerDescriptor

    return ValueRules(
        reference_descriptors={
            ManagerDescriptor: lambda descriptor: type(descriptor.manager),
            ReverseManyToOneDescriptor: lambda descriptor: descriptor.related_manager_cls,
        },
        materialized_iterables=(QuerySet,),
    )
