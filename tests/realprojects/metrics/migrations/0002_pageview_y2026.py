from django.db import migrations
from psqlextra.backend.migrations.operations import PostgresAddRangePartition


class Migration(migrations.Migration):
    dependencies = [("metrics", "0001_initial")]

    operations = [
        PostgresAddRangePartition(
            model_name="PageView",
            name="y2026",
            from_values="2026-01-01T00:00:00Z",
            to_values="2027-01-01T00:00:00Z",
        )
    ]
