"""A table partitioned by range with django-postgres-extra (Django 5.2 only: it wants <6.0).

PostgreSQL wants the partition key in the primary key: a composite one, (id, viewed_at).
"""

import uuid

from django.db import models
from psqlextra.models import PostgresPartitionedModel
from psqlextra.types import PostgresPartitioningMethod


class PageView(PostgresPartitionedModel):
    class PartitioningMeta:
        method = PostgresPartitioningMethod.RANGE
        key = ["viewed_at"]

    pk = models.CompositePrimaryKey("id", "viewed_at")
    id = models.UUIDField(default=uuid.uuid4)
    path = models.CharField(max_length=200)
    viewed_at = models.DateTimeField()
