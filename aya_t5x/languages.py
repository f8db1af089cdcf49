"""The language registry: the 101 Aya languages and the names datasets use.

One lookup for tasks, mixtures and reports. `assets/languages.tsv` (a copy of
the project's Aya language table: the aya-101 model card's grouping) gives
each language its ISO 639-3 code, name, script, family and resourcedness.
This module adds what the datasets need to be matched to it:

- Resource classes as the paper uses them: higher-, mid- and lower-resourced
  (HR/MR/LR), which are Joshi et al. (2020) classes 5-4, 3 and 2-0.
- Aliases: ISO 639-1 codes (`hi`), ISO 639-2/B codes (`chi`), the individual
  ISO 639-3 languages that datasets use for a macrolanguage of the table
  (`arb`, `ary`, `arz` for `ara`; `cmn` for `zho`; `zsm` for `msa`; `npi` for
  `nep`), FLORES-200 / xP3x style codes with a script (`hin_Deva`,
  `zho_Hans`), BCP-47 tags (`zh-Hant-TW`), and English names as datasets
  spell them (aya_dataset's `language` field: "Moroccan Arabic", "Simplified
  Chinese", "Filipino"; accents and case do not matter).

`get` raises on anything it does not know, naming close matches; `find`
returns None instead. `register` adds a language beyond the 101 (README, "Add
your language").
"""

import dataclasses
import difflib
import enum
import functools
import importlib.resources
import re
import threading
import unicodedata
from collections.abc import Iterable

# How many suggestions an unknown-language error offers.
_NUM_SUGGESTIONS = 5


class ResourceClass(enum.Enum):
  """Resourcedness as the Aya paper groups languages (Table 1, section 4)."""

  HIGHER = "higher"
  MID = "mid"
  LOWER = "lower"

  @property
  def joshi_classes(self) -> tuple[int, ...]:
    """The Joshi et al. (2020) language classes this group spans."""
    return {"higher": (4, 5), "mid": (3,), "lower": (0, 1, 2)}[self.value]

  @property
  def short_name(self) -> str:
    """HR, MR or LR, as the paper's tables label the groups."""
    return {"higher": "HR", "mid": "MR", "lower": "LR"}[self.value]

  @classmethod
  def parse(cls, value: "str | ResourceClass") -> "ResourceClass":
    """Accepts the enum, `higher`/`mid`/`lower`, `HR`/`MR`/`LR` or the
    table's `High`/`Mid`/`Low`."""
    if isinstance(value, cls):
      return value
    key = str(value).strip().lower()
    table = {"high": "higher", "higher": "higher", "hr": "higher",
             "mid": "mid", "mr": "mid", "low": "lower", "lower": "lower",
             "lr": "lower"}
    if key not in table:
      raise ValueError(
          f"Unknown resource class {value!r}: use one of higher/mid/lower "
          "(or HR/MR/LR, High/Mid/Low).")
    return cls(table[key])


# ISO 15924 codes of the table's script names, as FLORES-200 and xP3x write
# them after the language code (`hin_Deva`). Han covers both Chinese
# orthographies; Japanese text is also filed under its component scripts.
SCRIPT_CODES = {
    "Arabic": ("Arab",), "Armenian": ("Armn",), "Bengali": ("Beng",),
    "Cyrillic": ("Cyrl",), "Devanagari": ("Deva",), "Ge'ez": ("Ethi",),
    "Georgian": ("Geor",), "Greek": ("Grek",), "Gujarati": ("Gujr",),
    "Gurmukhi": ("Guru",), "Han": ("Hans", "Hant", "Hani"),
    "Hangul": ("Hang", "Kore"), "Hebrew": ("Hebr",),
    "Japanese": ("Jpan", "Hira", "Kana", "Hani"), "Kannada": ("Knda",),
    "Khmer": ("Khmr",), "Lao": ("Laoo",), "Latin": ("Latn",),
    "Malayalam": ("Mlym",), "Myanmar": ("Mymr",), "Oriya": ("Orya",),
    "Sinhala": ("Sinh",), "Tamil": ("Taml",), "Telugu": ("Telu",),
    "Thai": ("Thai",),
}

# Codes datasets use for a language of the table, beyond its own code.
# ISO 639-1 first, then ISO 639-2/B and the individual ISO 639-3 languages
# of a macrolanguage (only those that are the same language as the table
# means: Cantonese is not mapped to Chinese, romanised Arabic directories are
# filtered by script where it matters, see `Language.script_codes`).
_CODE_ALIASES = {
    "afr": ("af",), "amh": ("am",),
    "ara": ("ar", "arb", "acm", "acq", "acw", "acx", "aeb", "afb", "ajp",
            "apc", "apd", "arq", "ars", "ary", "arz", "ayl", "ayp", "abh",
            "abv", "adf", "aec", "auz", "avl", "ayh", "ayn", "pga", "shu",
            "ssh"),
    "aze": ("az", "azj", "azb"), "bel": ("be",), "ben": ("bn",),
    "bul": ("bg",), "cat": ("ca",), "ces": ("cs", "cze"), "cym": ("cy", "wel"),
    "dan": ("da",), "deu": ("de", "ger"), "ell": ("el", "gre"), "eng": ("en",),
    "epo": ("eo",), "est": ("et", "ekk"), "eus": ("eu", "baq"), "fin": ("fi",),
    "fil": ("tl", "tgl"), "fra": ("fr", "fre"), "fry": ("fy",), "gla": ("gd",),
    "gle": ("ga",), "glg": ("gl",), "guj": ("gu",), "hat": ("ht",),
    "hau": ("ha",), "heb": ("he", "iw"), "hin": ("hi",), "hun": ("hu",),
    "hye": ("hy", "arm"), "ibo": ("ig",), "ind": ("id", "in"),
    "isl": ("is", "ice"), "ita": ("it",), "jav": ("jv", "jw"), "jpn": ("ja",),
    "kan": ("kn",), "kat": ("ka", "geo"), "kaz": ("kk",), "khm": ("km",),
    "kir": ("ky",), "kor": ("ko",), "kur": ("ku", "kmr", "ckb"),
    "lao": ("lo",), "lav": ("lv", "lvs"), "lat": ("la",), "lit": ("lt",),
    "ltz": ("lb",), "mal": ("ml",), "mar": ("mr",), "mkd": ("mk", "mac"),
    "mlg": ("mg", "plt", "bhr", "bmm", "bzc", "msh", "skg", "tdx", "tkg",
            "txy", "xmv", "xmw"),
    "mlt": ("mt",), "mon": ("mn", "khk", "mvf"), "mri": ("mi", "mao"),
    "msa": ("ms", "may", "zsm", "zlm"), "mya": ("my", "bur"),
    "nep": ("ne", "npi"), "nld": ("nl", "dut"), "nor": ("no", "nb", "nn",
                                                       "nob", "nno"),
    "nso": (), "nya": ("ny",), "ory": ("or", "ori"), "pan": ("pa",),
    "pes": ("fa", "fas", "per"), "pol": ("pl",), "por": ("pt",),
    "pus": ("ps", "pbt", "pbu", "pst"), "ron": ("ro", "rum", "mo", "mol"),
    "rus": ("ru",), "sin": ("si",), "slk": ("sk", "slo"), "slv": ("sl",),
    "smo": ("sm",), "sna": ("sn",), "snd": ("sd",), "som": ("so",),
    "sot": ("st",), "spa": ("es",), "sqi": ("sq", "alb", "als", "aln", "aae",
                                           "aat"),
    "srp": ("sr",), "sun": ("su",), "swa": ("sw", "swh", "swc"),
    "swe": ("sv",), "tam": ("ta",), "tel": ("te",), "tgk": ("tg",),
    "tha": ("th",), "tur": ("tr",), "twi": ("tw",), "ukr": ("uk",),
    "urd": ("ur",), "uzb": ("uz", "uzn", "uzs"), "vie": ("vi",),
    "xho": ("xh",), "yid": ("yi", "ji", "ydd", "yih"), "yor": ("yo",),
    "zho": ("zh", "chi", "cmn"), "zul": ("zu",),
}

# English names datasets use besides the table's (aya_dataset's `language`
# field, ISO 639-3 reference names, common spellings). Matching ignores case,
# accents, punctuation and parenthesised qualifiers ("Nepali (individual
# language)").
_NAME_ALIASES = {
    "ara": ("Standard Arabic", "Modern Standard Arabic", "Moroccan Arabic",
            "Egyptian Arabic", "Najdi Arabic", "Ta'izzi-Adeni Arabic",
            "North Levantine Arabic", "South Levantine Arabic",
            "Levantine Arabic", "Mesopotamian Arabic", "Gelet Iraqi Arabic",
            "Tunisian Arabic", "Algerian Arabic", "Gulf Arabic",
            "Hijazi Arabic", "Sudanese Arabic", "Sanaani Arabic",
            "Libyan Arabic"),
    "aze": ("North Azerbaijani", "South Azerbaijani", "Azeri"),
    "ben": ("Bangla",), "cat": ("Valencian",), "ell": ("Modern Greek",),
    "est": ("Standard Estonian",), "fil": ("Filipino", "Tagalog"),
    "fry": ("Western Frisian", "West Frisian", "Frisian"),
    "gla": ("Scottish Gaelic", "Gaelic"), "hat": ("Haitian", "Haitian Creole"),
    "kir": ("Kyrgyz", "Kirghiz"), "kur": ("Northern Kurdish", "Kurmanji",
                                         "Central Kurdish", "Sorani"),
    "lav": ("Standard Latvian",), "ltz": ("Letzeburgesch",),
    "mlg": ("Plateau Malagasy",), "mon": ("Halh Mongolian",),
    "mri": ("Maori",), "msa": ("Standard Malay",), "mya": ("Myanmar",),
    "nep": ("Nepalese",), "nor": ("Norwegian Bokmal", "Norwegian Nynorsk",
                                 "Bokmal", "Nynorsk"),
    "nso": ("Sepedi", "Pedi", "Sesotho sa Leboa"),
    "nya": ("Nyanja", "Chewa", "Chinyanja"), "ory": ("Odia",),
    "pan": ("Panjabi", "Eastern Panjabi", "Eastern Punjabi"),
    "pes": ("Farsi", "Iranian Persian", "Western Persian"),
    "pus": ("Pushto", "Southern Pashto", "Northern Pashto"),
    "ron": ("Moldavian", "Moldovan"), "sin": ("Sinhalese",),
    "sot": ("Sesotho", "Sotho", "Southern Sotho"), "spa": ("Castilian",),
    "sqi": ("Tosk Albanian",), "swa": ("Kiswahili",),
    "tgk": ("Tajiki",), "uzb": ("Northern Uzbek",),
    "xho": ("isiXhosa",), "yid": ("Eastern Yiddish",),
    "zho": ("Simplified Chinese", "Traditional Chinese", "Mandarin",
            "Mandarin Chinese", "Chinese (Simplified)",
            "Chinese (Traditional)"),
    "zul": ("isiZulu",),
}


@dataclasses.dataclass(frozen=True)
class Language:
  """One language of the registry."""

  # ISO 639-3 code as the Aya table writes it, e.g. "hin", "zho", "pes".
  code: str
  # English name, e.g. "Hindi".
  name: str
  # Script name(s) as in the table, e.g. "Devanagari", "Arabic/Latin".
  script: str
  # Language family and subgroup, e.g. "Indo-European", "Indo-Aryan".
  family: str
  subgroup: str
  # Higher-, mid- or lower-resourced (Joshi classes 5-4 / 3 / 2-0).
  resource: ResourceClass
  # Other codes and names datasets use for it (see module docstring).
  aliases: tuple[str, ...] = ()

  @property
  def script_codes(self) -> tuple[str, ...]:
    """ISO 15924 codes of its script(s): the suffix in `hin_Deva`."""
    codes = []
    for name in self.script.split("/"):
      codes.extend(SCRIPT_CODES.get(name.strip(), ()))
    return tuple(dict.fromkeys(codes))

  @property
  def codes(self) -> tuple[str, ...]:
    """Its own code first, then the code aliases (names left out)."""
    return (self.code,) + tuple(a for a in self.aliases
                                if re.fullmatch(r"[a-z]{2,3}", a))


class UnknownLanguageError(KeyError):
  """A code or name the registry cannot match to a language."""

  def __str__(self) -> str:  # KeyError would print the repr of the message.
    return str(self.args[0])


def _normalize(value: str) -> str:
  """Case-, accent- and punctuation-insensitive key of a code or name."""
  text = unicodedata.normalize("NFKD", str(value))
  text = "".join(c for c in text if not unicodedata.combining(c))
  text = re.sub(r"\([^)]*\)", " ", text.casefold())
  text = re.sub(r"[^0-9a-z]+", " ", text)
  return " ".join(text.split())


def _base_code(value: str) -> str | None:
  """`hin` from `hin_Deva`, `zh` from `zh-Hant-TW`; None if not code-like."""
  match = re.fullmatch(r"([A-Za-z]{2,3})(?:[_-][A-Za-z0-9]{2,8})*",
                       value.strip())
  return match.group(1).lower() if match else None


class _Registry:
  """The table plus registered additions, with an alias index."""

  def __init__(self, languages: Iterable[Language]):
    self._lock = threading.Lock()
    self._languages: dict[str, Language] = {}
    self._index: dict[str, str] = {}
    for language in languages:
      self.add(language)

  def add(self, language: Language) -> None:
    with self._lock:
      existing = self._languages.get(language.code)
      if existing is not None:
        if existing != language:
          raise ValueError(
              f"Language {language.code!r} is already registered as "
              f"{existing}; a different definition cannot replace it.")
        return
      keys = [language.code, language.name, *language.aliases]
      for key in keys:
        owner = self._index.get(_normalize(key))
        if owner is not None and owner != language.code:
          raise ValueError(
              f"{key!r} of new language {language.code!r} already names "
              f"{owner!r}; pick another alias.")
      self._languages[language.code] = language
      for key in keys:
        self._index[_normalize(key)] = language.code

  def find(self, value: str) -> Language | None:
    if not isinstance(value, str) or not value.strip():
      return None
    code = self._index.get(_normalize(value))
    if code is None:
      base = _base_code(value)
      code = self._index.get(base) if base else None
    return self._languages.get(code) if code else None

  def suggestions(self, value: str) -> list[str]:
    keys = difflib.get_close_matches(_normalize(value), list(self._index),
                                     n=_NUM_SUGGESTIONS, cutoff=0.6)
    return [f"{key} ({self._index[key]})" for key in keys]

  def all(self) -> tuple[Language, ...]:
    with self._lock:
      return tuple(self._languages.values())


def _read_table() -> list[Language]:
  """The 101 Aya languages from the packaged table, in its order."""
  text = importlib.resources.files("aya_t5x").joinpath(
      "assets", "languages.tsv").read_text(encoding="utf-8")
  rows = [line.split("\t") for line in text.splitlines() if line.strip()]
  header, body = rows[0], rows[1:]
  expected = ["iso639_3", "name", "script", "family", "subgroup",
              "resourcedness"]
  if header != expected:
    raise ValueError(f"aya_t5x/assets/languages.tsv has columns {header}, "
                     f"expected {expected}.")
  languages = []
  for code, name, script, family, subgroup, resource in body:
    aliases = _CODE_ALIASES.get(code, ()) + _NAME_ALIASES.get(code, ())
    languages.append(Language(code, name, script, family, subgroup,
                              ResourceClass.parse(resource), aliases))
  return languages


@functools.cache
def _registry() -> _Registry:
  return _Registry(_read_table())


@functools.cache
def _aya_codes() -> frozenset[str]:
  return frozenset(l.code for l in _read_table())


def aya_languages() -> tuple[Language, ...]:
  """The 101 languages of the Aya model, in the table's order."""
  return tuple(l for l in _registry().all() if l.code in _aya_codes())


def all_languages() -> tuple[Language, ...]:
  """The Aya languages followed by any added with `register`."""
  return _registry().all()


def find(value: str) -> Language | None:
  """The language a code, alias or name means; None if unknown."""
  return _registry().find(value)


def get(value: "str | Language") -> Language:
  """Like `find`, but raises on unknown values.

  Raises:
    UnknownLanguageError: nothing in the registry matches `value`.
  """
  if isinstance(value, Language):
    return value
  language = find(value)
  if language is None:
    raise UnknownLanguageError(
        f"Unknown language {value!r}. Use an ISO 639-3 code of the Aya "
        "table (aya_t5x/assets/languages.tsv), an alias such as 'hi' or "
        f"'hin_Deva', or a name. Close matches: "
        f"{_registry().suggestions(str(value)) or 'none'}. A language "
        "outside the table can be added with aya_t5x.languages.register().")
  return language


def code(value: "str | Language") -> str:
  """The registry code of a code, alias or name, e.g. 'arb' -> 'ara'."""
  return get(value).code


def is_aya_language(value: str) -> bool:
  """Whether `value` names one of the 101 Aya languages."""
  language = find(value)
  return language is not None and language.code in _aya_codes()


def by_resource(resource: "str | ResourceClass") -> tuple[Language, ...]:
  """The Aya languages of one resource class, e.g. `by_resource("lower")`."""
  wanted = ResourceClass.parse(resource)
  return tuple(l for l in aya_languages() if l.resource == wanted)


def register(language: Language) -> Language:
  """Adds a language beyond the 101, e.g. to train on your own data.

  Registering the same definition again is a no-op, so modules that call
  this can be imported twice.

  Raises:
    ValueError: the code is taken by a different definition, or one of its
      names or aliases already means another language.
  """
  _registry().add(language)
  return language
