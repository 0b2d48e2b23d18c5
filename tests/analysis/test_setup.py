"""Configuration and administration of the analysis area: the metric setting check, the TG-263 import verb."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import override_settings

from rtbank.analysis.models import Tg263Name
from rtbank.analysis.system_checks import check_analysis_metrics


def test_an_unreadable_metric_setting_is_refused_at_start_up() -> None:
    with override_settings(ANALYSIS_METRICS=["D95%", "D95"]):
        errors = check_analysis_metrics()
    assert [e.id for e in errors] == ["rtbank.analysis.E001"] and "D95" in errors[0].msg
    with override_settings(ANALYSIS_METRICS=["D95%", "V20Gy[cc]"]):
        assert check_analysis_metrics() == []


@pytest.mark.django_db
def test_the_tg263_verb_replaces_the_list(tmp_path: Path) -> None:
    sheet = tmp_path / "TG263.csv"
    sheet.write_text(
        "Target Type\tTG263-Primary Name\tDescription\nAnatomic\tBrainstem\tBrainstem\n"
        "Anatomic\tSpinal Cord\tnot a valid name (space)\nAnatomic\tLungs\tBoth lungs\n"
    )
    out = StringIO()
    call_command("tg263", str(sheet), stdout=out)
    assert "2 TG-263 names imported" in out.getvalue()
    assert set(Tg263Name.objects.values_list("name", flat=True)) == {"Brainstem", "Lungs"}
    assert Tg263Name.objects.get(name="Lungs").target_type == "Anatomic"
    sheet.write_text("Name,Other\nHeart,x\n")
    with pytest.raises(SystemExit):
        call_command("tg263", str(sheet), stderr=StringIO())
    assert Tg263Name.objects.count() == 2  # a file without the TG-263 column changes nothing


@pytest.mark.django_db(transaction=True)
def test_the_sql_views_step_aside_while_migrations_change_tables() -> None:
    from django.db import connection, models

    from rtbank.analysis import sqlviews
    from rtbank.catalog.models import Roi

    names = {name for name, _ in sqlviews.VIEWS}
    assert names <= sqlviews.existing_views(connection)
    sqlviews.before_migrate()  # what `migrate` does first
    assert not names & sqlviews.existing_views(connection)
    old = Roi._meta.get_field("name")
    wider = models.CharField(max_length=200, db_index=True)
    wider.set_attributes_from_name("name")
    wider.model = Roi
    with connection.schema_editor() as editor:  # SQLite rebuilds the table; PostgreSQL alters the column type
        editor.alter_field(Roi, old, wider)
        editor.alter_field(Roi, wider, old)
    sqlviews.after_migrate()  # and last
    assert names <= sqlviews.existing_views(connection)
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM rtbank_dvh_curves")
        assert cursor.fetchone() == (0,)
