"""The import_catalog command: bad rows reported with line numbers, re-runs update in place."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from studyapp.models import Catalog, Item
from tests.conftest import shared_data_dir

pytestmark = pytest.mark.django_db


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_generic_import_reports_bad_rows_and_imports_the_rest(tmp_path: Path, capsys) -> None:
    src = write(tmp_path / "c.csv", "id,title,colour\n1,Red dress,red\n,No id,blue\n3,Blue jeans,\n")
    call_command("import_catalog", "generic", str(src), "--slug", "mini")
    err = capsys.readouterr().err
    assert "line 3" in err
    assert sorted(Item.objects.values_list("external_id", flat=True)) == ["1", "3"]
    assert Item.objects.get(external_id="3").attributes == {}


def test_reimport_updates_instead_of_duplicating(tmp_path: Path) -> None:
    src = write(tmp_path / "c.csv", "id,title\n1,Red dress\n2,Blue jeans\n")
    call_command("import_catalog", "generic", str(src), "--slug", "mini")
    version = Catalog.objects.get().version
    write(src, "id,title\n1,Red summer dress\n2,Blue jeans\n")
    call_command("import_catalog", "generic", str(src), "--slug", "mini")
    assert Item.objects.count() == 2
    assert Item.objects.get(external_id="1").title == "Red summer dress"
    assert Catalog.objects.get().version != version


def test_missing_path_is_a_clear_error() -> None:
    with pytest.raises(CommandError, match="No such file"):
        call_command("import_catalog", "generic", "/nonexistent/catalog.csv")


@pytest.mark.skipif(shared_data_dir() is None, reason="real data folder (../shared/data) not present")
def test_myntra_catalog_imports_every_imaged_product(capsys) -> None:
    call_command("import_catalog", "myntra", str(shared_data_dir() / "myntra"))
    catalog = Catalog.objects.get(slug="myntra")
    assert catalog.items.count() == 9583
    item = catalog.items.exclude(image_path="").first()
    assert (Path(catalog.data_dir) / item.image_path).is_file()


@pytest.mark.skipif(shared_data_dir() is None, reason="real data folder (../shared/data) not present")
def test_amazon_tops_catalog_imports(capsys) -> None:
    call_command("import_catalog", "amazon_tops", str(shared_data_dir() / "amazon_tops"))
    assert Catalog.objects.get(slug="amazon-tops").items.count() == 6000
