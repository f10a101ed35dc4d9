from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # Built and dropped concurrently: history is the largest table, and writes go on meanwhile.
    atomic = False

    dependencies = [("groups", "0012_always_current")]

    operations = [
        AddIndexConcurrently(
            model_name="membershipchange",
            index=models.Index(fields=["group", "xact_id", "id"], name="change_group_xact"),
        ),
        RemoveIndexConcurrently(model_name="membershipchange", name="change_xact"),
    ]
