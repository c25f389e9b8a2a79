"""Catalog readers: the generic format on hand-written fixtures, Myntra / Amazon on the real data."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from recommender.catalog.readers import (
    MYNTRA_ATTRIBUTE_KEYS,
    CatalogReadResult,
    RowError,
    read_amazon_tops,
    read_catalog,
    read_generic,
    read_myntra,
)

REPO = Path(__file__).resolve().parents[2]
DATA_DIR = Path(os.environ.get("WHISPERLITE_DATA_DIR", REPO.parent / "shared" / "data"))
needs_myntra = pytest.mark.skipif(
    not (DATA_DIR / "myntra" / "styles.csv").is_file(),
    reason=f"real Myntra data not found at {DATA_DIR}/myntra (set WHISPERLITE_DATA_DIR)",
)
needs_amazon = pytest.mark.skipif(
    not (DATA_DIR / "amazon_tops" / "items.csv").is_file(),
    reason=f"real Amazon tops data not found at {DATA_DIR}/amazon_tops (set WHISPERLITE_DATA_DIR)",
)


def _write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _by_id(result: CatalogReadResult) -> dict:
    return {item.item_id: item for item in result.items}


# --------------------------------------------------------------------------- generic CSV


def test_generic_csv_full_and_missing_optional_fields(tmp_path: Path) -> None:
    _write(tmp_path / "pics" / "a.jpg", b"\xff\xd8fake")
    csv_path = _write(
        tmp_path / "catalog.csv",
        "id,title,text,image,colour,gender\n"
        "a,Red Dress,A red party dress,pics/a.jpg,Red,Women\n"
        "b,Blue Jeans,,,Blue,\n"  # no text, no image, no gender
        "c,Grey Hoodie,Warm,https://example.com/c.jpg,,Men\n",
    )
    result = read_generic(csv_path)
    assert result.errors == []
    assert result.source == str(csv_path)
    items = _by_id(result)
    assert list(items) == ["a", "b", "c"]
    assert items["a"].text == "A red party dress"
    assert items["a"].attributes == {"colour": "Red", "gender": "Women"}
    assert items["a"].image_path == "pics/a.jpg" and items["a"].image_url is None
    assert items["b"].text == "" and items["b"].image_path is None and items["b"].image_url is None
    assert items["b"].attributes == {"colour": "Blue"}  # empty values are omitted
    assert items["c"].image_url == "https://example.com/c.jpg" and items["c"].image_path is None


def test_generic_csv_malformed_rows_reported_with_line_numbers(tmp_path: Path) -> None:
    csv_path = _write(
        tmp_path / "catalog.csv",
        "id,title,colour\n"  # line 1
        "1,Red Dress,Red\n"  # line 2 ok
        ",No Id,Blue\n"  # line 3: no id
        "3,,Green\n"  # line 4: no title
        "4,Too,Many,Fields\n"  # line 5: wrong column count
        "\n"  # line 6: blank, ignored
        "5,Short\n"  # line 7: too few fields
        "1,Duplicate Of One,Red\n"  # line 8: duplicate id
        '6,"Quoted, with comma",Black\n'  # line 9 ok
        '7,"Multi\nline title",White\n'  # lines 10-11 ok (quoted newline)
        "8,After Multiline,Pink\n",  # line 12 ok
    )
    result = read_generic(csv_path)
    assert [item.item_id for item in result.items] == ["1", "6", "7", "8"]
    assert [e.line for e in result.errors] == [3, 4, 5, 7, 8]
    messages = {e.line: e.message for e in result.errors}
    assert "id" in messages[3]
    assert "title" in messages[4]
    assert "fields" in messages[5] and "fields" in messages[7]
    assert "duplicate" in messages[8] and "line 2" in messages[8]
    assert _by_id(result)["6"].title == "Quoted, with comma"
    assert str(RowError(3, "missing id")) == "line 3: missing id"


def test_generic_csv_header_problems_and_bom(tmp_path: Path) -> None:
    no_title = read_generic(_write(tmp_path / "a.csv", "id,name\n1,Red Dress\n"))
    assert no_title.items == [] and no_title.errors[0].line == 1 and "title" in no_title.errors[0].message

    # Excel's UTF-8 BOM and upper-case reserved column names are accepted.
    bom = read_generic(_write(tmp_path / "b.csv", "\ufeffID,Title,Colour\n1,Red Dress,Red\n"))
    assert bom.errors == [] and bom.items[0].item_id == "1" and bom.items[0].attributes == {"Colour": "Red"}

    empty = read_generic(_write(tmp_path / "c.csv", ""))
    assert empty.items == [] and empty.errors and empty.errors[0].line == 1


def test_generic_csv_non_utf8_line_costs_only_its_row(tmp_path: Path) -> None:
    path = _write(tmp_path / "latin.csv", b"id,title\n1,Red Dress\n2,Caf\xe9 Shirt\n3,Blue Jeans\n")
    result = read_generic(path)
    assert [i.item_id for i in result.items] == ["1", "3"]
    assert [(e.line, "UTF-8" in e.message) for e in result.errors] == [(3, True)]


def test_generic_attributes_column_holding_json(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "c.csv",
        'id,title,attributes\n1,Red Dress,"{""colour"": ""Red"", ""sizes"": [""S"", ""M""]}"\n2,Bad,{not json\n',
    )
    result = read_generic(path)
    assert result.items[0].attributes == {"colour": "Red", "sizes": "S, M"}
    assert [e.line for e in result.errors] == [3]


# --------------------------------------------------------------------------- generic JSONL


def test_generic_jsonl(tmp_path: Path) -> None:
    _write(tmp_path / "img" / "2.png", b"\x89PNGfake")
    lines = [
        json.dumps(
            {"id": 1, "title": "Red Dress", "attributes": {"colour": "Red", "year": 2012.0}, "brand": "Acme"}
        ),
        json.dumps({"id": "2", "title": "Blue Jeans", "image": "img/2.png", "text": "slim fit"}),
        "",
        "{bad json",
        json.dumps({"title": "No id"}),
        json.dumps({"id": "3"}),
        json.dumps(["not", "an", "object"]),
        json.dumps({"id": "4", "title": "Nested", "attributes": {"size": {"eu": 38}}}),
        json.dumps({"id": "5", "title": "Remote", "image": "http://example.com/5.jpg", "on_sale": True}),
        json.dumps({"id": 1, "title": "Duplicate"}),
    ]
    path = _write(tmp_path / "catalog.jsonl", "\n".join(lines) + "\n")
    result = read_generic(path)
    items = _by_id(result)
    assert list(items) == ["1", "2", "5"]
    assert items["1"].attributes == {"brand": "Acme", "colour": "Red", "year": "2012"}
    assert items["2"].image_path == "img/2.png" and items["2"].text == "slim fit"
    assert items["5"].image_url == "http://example.com/5.jpg" and items["5"].attributes == {"on_sale": "true"}
    assert [e.line for e in result.errors] == [4, 5, 6, 7, 8, 10]
    assert "JSON" in result.errors[0].message


@pytest.mark.parametrize("suffix", [".ndjson", ".json"])
def test_generic_jsonl_other_extensions(tmp_path: Path, suffix: str) -> None:
    path = _write(tmp_path / f"catalog{suffix}", '{"id": "a", "title": "Red Dress"}\n')
    assert [i.item_id for i in read_generic(path).items] == ["a"]


def test_generic_json_array_is_rejected_clearly(tmp_path: Path) -> None:
    path = _write(tmp_path / "catalog.json", '[{"id": "a", "title": "Red Dress"}]\n')
    result = read_generic(path)
    assert result.items == [] and "JSON lines" in result.errors[0].message


# --------------------------------------------------------------------------- images


def test_image_paths_must_exist_and_stay_inside_the_folder(tmp_path: Path) -> None:
    _write(tmp_path / "outside.jpg", b"x")
    folder = tmp_path / "cat"
    _write(folder / "ok.jpg", b"x")
    path = _write(
        folder / "catalog.csv",
        "id,title,image\n"
        "1,Ok,ok.jpg\n"
        "2,Missing,missing.jpg\n"
        "3,Escapes,../outside.jpg\n"
        f"4,Absolute,{tmp_path / 'outside.jpg'}\n"
        "5,Ftp,ftp://example.com/x.jpg\n"
        "6,Https,HTTPS://example.com/x.jpg\n",
    )
    result = read_generic(path)
    items = _by_id(result)
    assert result.errors == []  # image problems never cost the row
    assert items["1"].image_path == "ok.jpg"
    for item_id in "2345":
        assert items[item_id].image_path is None and items[item_id].image_url is None
    assert items["6"].image_url == "HTTPS://example.com/x.jpg"
    assert [w.line for w in result.warnings] == [3, 4, 5, 6]


# --------------------------------------------------------------------------- dispatch


def test_read_catalog_dispatch_and_missing_paths(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.csv", "id,title\n1,Red Dress\n")
    assert [i.item_id for i in read_catalog("generic", path).items] == ["1"]
    with pytest.raises(FileNotFoundError, match="not found"):
        read_catalog("generic", tmp_path / "nope.csv")
    with pytest.raises(FileNotFoundError, match="myntra"):
        read_catalog("myntra", tmp_path / "no-such-dir")
    with pytest.raises(FileNotFoundError):
        read_catalog("amazon_tops", tmp_path)  # exists, but holds no items.csv
    with pytest.raises(ValueError, match="unknown catalog format"):
        read_catalog("ikea", path)
    with pytest.raises(ValueError, match="format"):
        read_generic(_write(tmp_path / "c.xlsx", "x"))


def test_myntra_reader_on_a_small_fixture(tmp_path: Path) -> None:
    folder = tmp_path / "myntra"
    header = "id,gender,masterCategory,subCategory,articleType,baseColour,season,year,usage,productDisplayName,has_image"
    _write(
        folder / "styles.csv",
        f"{header}\n"
        "1,Men,Apparel,Topwear,Shirts,Navy Blue,Fall,2011.0,Casual,Turtle Check Men Navy Blue Shirt,True\n"
        "2,Women,Apparel,Topwear,Tops,Pink,Summer,2012.0,,,True\n"  # no usage, no title
        "3,Men,Footwear,Shoes,Casual Shoes,Black,Fall,2012.0,Casual,Puma Men, Black, Shoes,True\n"  # extra commas
        "4,Men,Apparel,Topwear,Tshirts,Red,Fall,2012.0,Casual,No Photo Tshirt,False\n"
        "5,Men,Apparel\n",  # truncated row
    )
    for item_id in ("1", "2", "3"):
        _write(folder / "images" / f"{item_id}.jpg", b"x")
    result = read_myntra(tmp_path)  # the parent folder works too
    items = _by_id(result)
    assert list(items) == ["1", "2", "3"]
    assert items["1"].attributes["year"] == "2011"
    assert items["1"].image_path == "images/1.jpg"
    assert items["2"].title == "Pink Tops" and "usage" not in items["2"].attributes
    assert items["3"].title == "Puma Men, Black, Shoes"
    assert [e.line for e in result.errors] == [6]
    everything = read_myntra(folder, only_with_images=False)
    assert _by_id(everything)["4"].image_path is None


# --------------------------------------------------------------------------- real data


@needs_myntra
def test_real_myntra_imaged_rows() -> None:
    result = read_myntra(DATA_DIR / "myntra")
    assert result.errors == []
    assert len(result.items) == 9583
    assert len({i.item_id for i in result.items}) == 9583
    for item in result.items:
        assert item.title
        assert item.image_path == f"images/{item.item_id}.jpg"
        assert set(item.attributes) <= set(MYNTRA_ATTRIBUTE_KEYS)
        assert not item.attributes.get("year", "").endswith(".0")
    assert all((DATA_DIR / "myntra" / i.image_path).is_file() for i in result.items[:50])  # type: ignore[operator]
    sample = _by_id(result)["15970"]
    assert sample.title == "Turtle Check Men Navy Blue Shirt"
    assert sample.attributes == {
        "gender": "Men",
        "masterCategory": "Apparel",
        "subCategory": "Topwear",
        "articleType": "Shirts",
        "baseColour": "Navy Blue",
        "season": "Fall",
        "year": "2011",
        "usage": "Casual",
    }


@needs_myntra
def test_real_myntra_all_rows() -> None:
    result = read_catalog("myntra", DATA_DIR / "myntra")
    assert len(result.items) == 9583
    everything = read_myntra(DATA_DIR, only_with_images=False)
    assert everything.errors == [] and len(everything.items) == 44446
    assert sum(1 for i in everything.items if i.image_path) == 9583
    assert all(i.title for i in everything.items)  # empty productDisplayName falls back


@needs_amazon
def test_real_amazon_tops() -> None:
    result = read_catalog("amazon_tops", DATA_DIR / "amazon_tops")
    assert result.errors == []
    assert len(result.items) == 6000
    types = {i.attributes.get("product_type") for i in result.items}
    assert not any(t and ("BOOKS" in t.upper() or "Books" in t) for t in types)
    assert "Shirt" in types
    assert all(i.attributes.get("price", "").startswith("$") for i in result.items)
    assert all(i.image_url and i.image_url.startswith("https://") for i in result.items)
    assert all(i.image_path == f"images/{i.item_id}.jpg" for i in result.items)
    assert any("brand" not in i.attributes for i in result.items)  # empty brands are omitted
    assert read_amazon_tops(DATA_DIR).items[0] == result.items[0]


def test_generic_item_id_is_the_key_and_id_an_alias(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_text("item_id,title\nA1,Red shirt\n")
    assert [i.item_id for i in read_generic(path).items] == ["A1"]
    path.write_text("id,title\nA1,Red shirt\n")  # the alias
    assert [i.item_id for i in read_generic(path).items] == ["A1"]
    jsonl = tmp_path / "items.jsonl"
    jsonl.write_text(
        '{"item_id": "A1", "id": "B2", "title": "x"}\n{"item_id": "C3", "id": "C3", "title": "y"}\n'
    )
    result = read_generic(jsonl)
    assert [i.item_id for i in result.items] == ["C3"]
    assert "differ" in result.errors[0].message and result.errors[0].line == 1


def test_training_items_file_uses_the_catalog_format(tmp_path: Path) -> None:
    from recommender.training.loaders import load_generic

    logs = tmp_path / "logs.csv"
    logs.write_text("user_id,item_id,timestamp,request_text\nu,A1,1,a shirt\n")
    items = tmp_path / "items.csv"
    items.write_text("item_id,title,colour\nA1,Red shirt,Red\n")
    ds = load_generic(logs, items)
    assert ds.items[0].title == "Red shirt" and ds.items[0].attributes == {"colour": "Red"}
    items.write_text("item_id,title\nA1,\n")
    with pytest.raises(ValueError, match="line 2: missing title"):
        load_generic(logs, items)
