"""Tests of the language registry."""

import csv
import os

import pytest

from aya_t5x import languages

_SHARED_TABLE = os.path.join(os.path.dirname(__file__), "..", "..", "shared",
                             "aya_languages.tsv")


def test_registry_has_the_101_aya_languages_24_26_51():
  assert len(languages.aya_languages()) == 101
  counts = {r: len(languages.by_resource(r)) for r in ("higher", "mid",
                                                       "lower")}
  assert counts == {"higher": 24, "mid": 26, "lower": 51}


@pytest.mark.skipif(not os.path.isfile(_SHARED_TABLE),
                    reason="shared language table not beside the clone")
def test_packaged_table_matches_the_shared_one():
  with open(_SHARED_TABLE, encoding="utf-8") as f:
    shared = [row["iso639_3"] for row in csv.DictReader(f, delimiter="\t")]
  assert [l.code for l in languages.aya_languages()] == shared


@pytest.mark.parametrize("value,code", [
    ("hin", "hin"), ("hi", "hin"), ("hin_Deva", "hin"), ("HINDI", "hin"),
    ("arb", "ara"), ("ary", "ara"), ("arb_Arab", "ara"),
    ("Moroccan Arabic", "ara"), ("Standard Arabic", "ara"),
    ("cmn", "zho"), ("zho_Hans", "zho"), ("zh-Hant-TW", "zho"),
    ("Simplified Chinese", "zho"), ("Traditional Chinese", "zho"),
    ("zsm_Latn", "msa"), ("npi_Deva", "nep"), ("plt_Latn", "mlg"),
    ("swh_Latn", "swa"), ("tgl", "fil"), ("Filipino", "fil"),
    ("fa", "pes"), ("Persian", "pes"), ("nob", "nor"), ("azj_Latn", "aze"),
    ("Yorùbá", "yor"), ("Māori", "mri"), ("Modern Greek (1453-)", "ell"),
    ("Nepali (individual language)", "nep"), ("Sepedi", "nso"),
    ("chi", "zho"), ("ger", "deu"),
])
def test_codes_aliases_and_dataset_names_map_to_one_language(value, code):
  assert languages.get(value).code == code


@pytest.mark.parametrize("value", ["wol", "Wolof", "yue", "", "xx_Latn"])
def test_languages_outside_the_table_are_not_found(value):
  assert languages.find(value) is None
  assert not languages.is_aya_language(value)


def test_unknown_language_error_names_value_and_close_matches():
  with pytest.raises(languages.UnknownLanguageError, match="Hindy") as e:
    languages.get("Hindy")
  assert "hin" in str(e.value)


def test_resource_classes_carry_joshi_classes_and_short_names():
  assert languages.get("eng").resource is languages.ResourceClass.HIGHER
  assert languages.get("swa").resource.joshi_classes == (0, 1, 2)
  assert languages.ResourceClass.parse("MR").joshi_classes == (3,)
  assert languages.ResourceClass.parse("Low").short_name == "LR"
  with pytest.raises(ValueError, match="higher/mid/lower"):
    languages.ResourceClass.parse("medium")


def test_script_codes_follow_flores_suffixes():
  assert languages.get("hin").script_codes == ("Deva",)
  assert languages.get("aze").script_codes == ("Arab", "Latn")
  assert "Hans" in languages.get("zho").script_codes
  assert languages.get("amh").script_codes == ("Ethi",)


def test_register_adds_a_language_idempotently_and_refuses_clashes():
  quechua = languages.Language("que", "Quechua", "Latin", "Quechuan", "-",
                               languages.ResourceClass.LOWER, ("qu",))
  languages.register(quechua)
  languages.register(quechua)  # Same definition again: a no-op.
  assert languages.get("qu") == quechua
  assert not languages.is_aya_language("que")
  assert quechua in languages.all_languages()
  with pytest.raises(ValueError, match="already registered"):
    languages.register(languages.Language(
        "que", "Quechua", "Latin", "Quechuan", "-",
        languages.ResourceClass.MID))
  with pytest.raises(ValueError, match="already names 'hin'"):
    languages.register(languages.Language(
        "zzz", "Hindi", "Latin", "-", "-", languages.ResourceClass.LOWER))
