"""The documented SQL views (docs/sql.md); the SQL is the same on SQLite and PostgreSQL."""

from django.db import migrations

from rtbank.analysis.sqlviews import CREATE, DROP


class Migration(migrations.Migration):
    dependencies = [
        ("analysis", "0001_initial"),
        ("catalog", "0001_initial"),
        ("institutions", "0001_initial"),
        ("projects", "0001_initial"),
    ]

    operations = [migrations.RunSQL(sql=CREATE, reverse_sql=DROP)]
