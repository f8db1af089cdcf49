r"""The round-trip filter: drop translated rows whose back-translation drifts.

    python -m aya_t5x.roundtrip --gin_file=gin/models/mt5_xxl.gin \
      --gin_file=gin/runs/roundtrip.gin \
      --gin.ROUND_TRIP_TASK="'my_swahili_instructions'" \
      --gin.ORIGINAL_COLUMNS="{'inputs': 'english_inputs'}" \
      --gin.TRANSLATOR_URL="'http://localhost:8000/v1'" \
      --gin.TRANSLATOR_MODEL="'nllb'" --gin.ROUND_TRIP_OUTPUT_DIR="'/data/rt'"

A translated row is translated back into the original's language (by one of
our checkpoints or a served model) and the back-translation is scored
against the original with chrF++ (sacrebleu, as FLORES is scored). A row
whose score is under THRESHOLD drifted in translation ("where do aliens
come from" -> "wageni wanatoka wapi" -> "where do guests come from") and is
dropped. The check runs on the task's raw rows, so it works for any task
built on `sources.RowSource`: the translated Aya sources and a dataset of
your own (`register_dataset`).

Where the original text is:
- ORIGINAL_COLUMNS: a column of the same row (your own translations), or
- PAIR_TASK + PAIR_KEY: the row of another task (the English one) with the
  same PAIR_KEY value. Which column links a translated Aya Collection row
  to its English original is UNCERTAIN (`info_uuid` is the candidate; check
  on the Hub).

Writes ROUND_TRIP_OUTPUT_DIR/scores.jsonl (every row's back-translation,
score and whether it is kept; appended batch by batch and resumed like
`aya_t5x.infer`) and summary.json (rows, kept and dropped per language).
Training then drops the same rows with `RoundTripFilter(scores.jsonl)`:
pass it in `register_dataset(filters=...)`, or re-register any task with it
(`register_filtered`); its drops are counted as `round_trip_drift`.
"""

import collections
import dataclasses
import functools
import hashlib
import importlib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

# Run as a program: hide native start-up noise before the heavy imports
# (aya_t5x.startup; --verbose shows it).
from aya_t5x import startup  # pylint: disable=g-bad-import-order
if __name__ == "__main__":
  startup.begin(sys.argv)

import gin
import sacrebleu
import seqio

from aya_t5x import data
from aya_t5x import decoding
from aya_t5x import generators
from aya_t5x import gin_utils
from aya_t5x import inference
from aya_t5x import jsonl_io
from aya_t5x import languages
from aya_t5x import model as model_lib
from aya_t5x import partitioning
from aya_t5x import preprocessors
from aya_t5x import sources
from aya_t5x.tasks import registry_helpers
from aya_t5x.tasks.eval import prompts

# Ours: the paper states no threshold. chrF++ of a faithful round trip of a
# short sentence is typically well above it; tune it on your data.
DEFAULT_THRESHOLD = 50.0
DRIFT = "round_trip_drift"
UNSCORED = "round_trip_unscored"
_SETUP = gin_utils.SetupPhase()


def row_key(language: str, inputs: Any, targets: Any) -> str:
  """The identity of a raw row, the same in the CLI and in the filter."""
  text = "\x1f".join([language, preprocessors.as_text(inputs),
                      preprocessors.as_text(targets)])
  return hashlib.sha1(text.encode("utf-8")).hexdigest()


def chrf_plus_plus(hypothesis: str, reference: str) -> float:
  """Sentence chrF++ (character 6-grams plus word bigrams), 0-100."""
  return float(sacrebleu.CHRF(word_order=2).sentence_score(
      hypothesis, [reference]).score)


# ------------------------------------------------------------ the filter ---


@dataclasses.dataclass(frozen=True)
class RoundTripFilter:
  """Drops the rows a round-trip scores file marks as drifted.

  A metadata-stage filter (it reads the raw row, before the cap and
  hygiene, as the CLI did). Rows the file does not score are kept, or
  dropped as `round_trip_unscored` with `drop_unscored`.
  """

  scores_path: str
  threshold: float | None = None  # None: the threshold the CLI used.
  fields: tuple[str, ...] = ("inputs",)
  drop_unscored: bool = False
  stage: str = "pre_cap"

  @functools.cached_property
  def _scores(self) -> dict[str, float]:
    if not os.path.exists(self.scores_path):
      raise FileNotFoundError(f"RoundTripFilter: no scores file "
                              f"{self.scores_path!r}; run python -m "
                              "aya_t5x.roundtrip first.")
    with open(self.scores_path, encoding="utf-8") as f:
      return {r["inputs"]: r["score"] for r in map(json.loads, f)}

  def _threshold(self) -> float:
    if self.threshold is not None:
      return self.threshold
    summary = os.path.join(os.path.dirname(self.scores_path), "summary.json")
    with open(summary, encoding="utf-8") as f:
      return float(json.load(f)["threshold"])

  def check(self, row) -> tuple[str, str] | None:
    score = self._scores.get(row_key(row["language"], row.get("inputs"),
                                     row.get("targets")))
    if score is None:
      return (UNSCORED, self.fields[0]) if self.drop_unscored else None
    return (DRIFT, self.fields[0]) if score < self._threshold() else None


def register_filtered(task: str, scores_path: str, name: str | None = None,
                      threshold: float | None = None,
                      fields: tuple[str, ...] = ("inputs",)) -> seqio.Task:
  """`task` again, as `name` (default `<task>_round_trip`), with the
  round-trip filter after its own filters."""
  source = seqio.get_mixture_or_task(task).source
  spec = source.spec
  own = spec.filters
  round_trip = RoundTripFilter(scores_path, threshold, fields)
  filtered = dataclasses.replace(spec, filters=lambda: (*own(), round_trip))
  return registry_helpers.register_source_task(
      name or f"{task}_round_trip", filtered, language=spec.language,
      dataset=spec.dataset,
      vocabulary=seqio.get_mixture_or_task(task).output_features[
          "inputs"].vocabulary)


# --------------------------------------------------------------- the CLI ---


@dataclasses.dataclass(frozen=True)
class RoundTripConfig:
  """What to check and how (gin: `roundtrip.RoundTripConfig`)."""

  task: str  # ROUND_TRIP_TASK: a task built on sources.RowSource.
  output_dir: str  # ROUND_TRIP_OUTPUT_DIR
  split: str = "train"  # SPLIT
  module: str | None = "aya_t5x.mixtures"  # MODULE: registers the task.
  fields: tuple[str, ...] = ("inputs",)  # FIELDS: the translated fields.
  # ORIGINAL_COLUMNS: {field: column of the same row holding its original}.
  original_columns: Mapping[str, str] = dataclasses.field(
      default_factory=dict)
  pair_task: str | None = None  # PAIR_TASK: the originals' task.
  pair_key: str | None = None  # PAIR_KEY: the column linking the two.
  original_language: str = "eng"  # ORIGINAL_LANGUAGE
  threshold: float = DEFAULT_THRESHOLD  # THRESHOLD (chrF++)
  batch_size: int = 16  # BATCH_SIZE
  max_examples: int | None = None  # MAX_EXAMPLES

  def __post_init__(self):
    if bool(self.original_columns) == bool(self.pair_task):
      raise ValueError("Give the originals by ORIGINAL_COLUMNS or by "
                       "PAIR_TASK + PAIR_KEY (exactly one).")
    if self.pair_task and not self.pair_key:
      raise ValueError("PAIR_TASK needs PAIR_KEY (the linking column).")
    missing = set(self.fields) - set(self.original_columns)
    if self.original_columns and missing:
      raise ValueError(f"ORIGINAL_COLUMNS has no column for {sorted(missing)}"
                       f" (FIELDS={self.fields}).")
    if self.batch_size < 1:
      raise ValueError(f"BATCH_SIZE={self.batch_size} must be >= 1.")

  def path(self, name: str) -> str:
    return os.path.join(self.output_dir, name)


def _spec(task: str, module: str | None) -> sources.SourceSpec:
  found = data.get_mixture_or_task(task, module)
  source = getattr(found, "source", None)
  if not isinstance(source, sources.RowSource):
    raise ValueError(f"ROUND_TRIP_TASK={task!r} is not a task over "
                     "sources.RowSource (a training task).")
  return source.spec


def raw_rows(spec: sources.SourceSpec, split: str, extra: Mapping[str, str],
             skipped: collections.Counter) -> list[dict]:
  """The rows a task selects, raw, with the `extra` {field: column}s;
  undecodable records are counted in `skipped`."""
  columns = {**spec.fields.columns(), **extra}
  out = []
  for f in spec.files.resolve(split):
    for index, row in sources.iter_rows(f.path, sources.file_format(f.path),
                                        columns):
      if isinstance(row, sources.BadRecord):
        skipped[f"{row.reason} {row.field}"] += 1
        continue
      raw = spec.language or preprocessors.as_text(row.get("language"))
      found = languages.find(raw) if raw else None
      if found is None or (spec.languages is not None
                           and found.code not in spec.languages):
        continue
      out.append(dict(row, language=found.code, where=f"{f.key}:{index}"))
  return out


def rows_with_originals(config: RoundTripConfig
                        ) -> tuple[list[dict], collections.Counter]:
  """Rows to check, each with `original_<field>`; rows without an
  original are skipped and counted."""
  spec = _spec(config.task, config.module)
  skipped = collections.Counter()
  if config.original_columns:
    rows = raw_rows(spec, config.split, {f"original_{f}": c for f, c in
                                         config.original_columns.items()},
                    skipped)
  else:
    rows = raw_rows(spec, config.split, {"pair": config.pair_key}, skipped)
    pair_spec = _spec(config.pair_task, config.module)
    originals = {preprocessors.as_text(r["pair"]): r for r in raw_rows(
        pair_spec, config.split, {"pair": config.pair_key}, skipped)}
    for row in rows:
      original = originals.get(preprocessors.as_text(row["pair"]))
      for field in config.fields:
        row[f"original_{field}"] = original and original.get(field)
  kept = []
  for row in rows:
    if all(preprocessors.as_text(row.get(f"original_{f}")).strip()
           and preprocessors.as_text(row.get(f)).strip()
           for f in config.fields):
      kept.append(row)
    else:
      skipped["no original or no text"] += 1
  if config.max_examples is not None:
    kept = kept[:config.max_examples]
  return kept, skipped


def _requests(rows: Sequence[dict], config: RoundTripConfig) -> list[str]:
  target = languages.get(config.original_language).name
  return [prompts.TRANSLATE.format(target_language=target,
                                   sentence=preprocessors.as_text(r[f]))
          for r in rows for f in config.fields]


def _scored(rows: Sequence[dict], back: Sequence[str], start: int,
            config: RoundTripConfig) -> list[dict]:
  out, n = [], len(config.fields)
  for i, row in enumerate(rows):
    texts = back[i * n:(i + 1) * n]
    scores = [chrf_plus_plus(t, preprocessors.as_text(row[f"original_{f}"]))
              for t, f in zip(texts, config.fields)]
    score = min(scores)
    out.append({"index": start + i, "inputs": row["key"],
                "where": row["where"], "language": row["language"],
                "back_translations": list(texts), "score": score,
                "kept": score >= config.threshold})
  return out


def score_rows(config: RoundTripConfig,
               translator: generators.Generator) -> dict[str, Any]:
  """Back-translates and scores every row not yet in scores.jsonl, then
  writes summary.json; returns the summary."""
  rows, skipped = rows_with_originals(config)
  for row in rows:
    row["key"] = row_key(row["language"], row.get("inputs"),
                         row.get("targets"))
  os.makedirs(config.output_dir, exist_ok=True)
  path = config.path("scores.jsonl")
  start = jsonl_io.resume_point(path, [{"inputs": r["key"]} for r in rows])
  for begin in range(start, len(rows), config.batch_size):
    batch = rows[begin:begin + config.batch_size]
    back = translator.generate(_requests(batch, config))
    jsonl_io.append_jsonl(path, _scored(batch, back, begin, config))
  return write_summary(config, skipped, start)


def write_summary(config: RoundTripConfig, skipped, resumed_at: int
                  ) -> dict[str, Any]:
  with open(config.path("scores.jsonl"), encoding="utf-8") as f:
    scored = [json.loads(line) for line in f]
  by_language = collections.defaultdict(collections.Counter)
  for row in scored:
    by_language[row["language"]]["kept" if row["kept"] else DRIFT] += 1
  summary = {"task": config.task, "threshold": config.threshold,
             "rows": len(scored), "kept": sum(r["kept"] for r in scored),
             "resumed_at": resumed_at, "skipped_rows": dict(skipped),
             "by_language": {k: dict(v) for k, v in sorted(
                 by_language.items())},
             "scores": config.path("scores.jsonl")}
  with open(config.path("summary.json"), "w", encoding="utf-8") as f:
    json.dump(summary, f, indent=2, ensure_ascii=False)
  return summary


@dataclasses.dataclass(frozen=True)
class TranslatorConfig:
  """The back-translator (gin: `roundtrip.TranslatorConfig`)."""

  checkpoint_path: str | None = None  # TRANSLATOR_CHECKPOINT
  url: str | None = None  # TRANSLATOR_URL
  model: str | None = None  # TRANSLATOR_MODEL
  api_key_env: str | None = None  # API_KEY_ENV
  max_input_length: int = 1024  # MAX_INPUT_LENGTH
  max_new_tokens: int = 256  # MAX_NEW_TOKENS

  def __post_init__(self):
    if (self.checkpoint_path is None) == (self.url is None):
      raise ValueError("Set exactly one of TRANSLATOR_CHECKPOINT and "
                       f"TRANSLATOR_URL; got {self.checkpoint_path!r} and "
                       f"{self.url!r}.")
    if self.url is not None and not self.model:
      raise ValueError("TRANSLATOR_URL needs TRANSLATOR_MODEL.")


@gin.configurable
def roundtrip(*, config: RoundTripConfig, translator: TranslatorConfig,
              model: model_lib.EncoderDecoderModel | None = None,
              vocabulary: seqio.Vocabulary | None = None,
              partitioning_config: partitioning.PartitioningConfig = (
                  partitioning.PartitioningConfig())) -> dict[str, Any]:
  """The gin entry point: greedy back-translation, then scoring."""
  rows_with_originals(config)  # A wrong task or column fails in set-up.
  if translator.url is not None:
    generator = generators.EndpointConfig(
        translator.url, translator.model, translator.api_key_env,
        max_tokens=translator.max_new_tokens).generator()
  else:
    predictor = inference.Predictor.from_checkpoint(
        model, translator.checkpoint_path, vocabulary,
        batch_size=config.batch_size,
        max_input_length=translator.max_input_length,
        partitioner=partitioning.Partitioner(partitioning_config))
    generator = generators.ModelGenerator(predictor, decoding.DecodingConfig(
        method="greedy", max_new_tokens=translator.max_new_tokens))
  _SETUP.finish()
  return score_rows(config, generator)


def main(command_line: gin_utils.CommandLine) -> dict[str, Any]:
  gin_utils.parse_gin(command_line.gin_files, command_line.gin_bindings,
                      command_line.gin_search_paths)
  startup.ready()
  with _SETUP.usage_errors(TypeError, ValueError, FileNotFoundError,
                           KeyError):
    summary = roundtrip()  # pylint: disable=missing-kwoa
  print(f"aya_t5x.roundtrip: {summary['kept']} of {summary['rows']} rows "
        f"kept at chrF++ >= {summary['threshold']}; per language "
        f"{summary['by_language']} -> {summary['scores']}", flush=True)
  return summary


def console_main() -> None:
  gin_utils.run(main)


if __name__ == "__main__":
  importlib.import_module("aya_t5x.roundtrip").console_main()
