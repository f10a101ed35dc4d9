import django.contrib.postgres.indexes
from django.db import migrations, models

import groups.models


class Migration(migrations.Migration):
    dependencies = [("groups", "0005_history_index_per_read")]

    operations = [
        # Added empty, then given its default: existing history keeps NULL (it predates the feed)
        # and the table is not rewritten.
        migrations.AddField(
            model_name="membershipchange",
            name="xact_id",
            field=models.BigIntegerField(editable=False, null=True),
        ),
        migrations.AlterField(
            model_name="membershipchange",
            name="xact_id",
            field=models.BigIntegerField(db_default=groups.models.CURRENT_TRANSACTION, editable=False, null=True),
        ),
        migrations.AddIndex(
            model_name="membershipchange",
            index=django.contrib.postgres.indexes.BrinIndex(autosummarize=True, fields=["xact_id"], name="change_xact"),
        ),
    ]
