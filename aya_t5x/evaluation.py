"""The evaluation runner: a model's scores on the Aya suite, per language.

    result = run_suite(predictor, SuiteConfig(benchmarks=("xcopa", "xnli")))
    result.results  # {benchmark: {language: {metric: value}}}

Each benchmark of `aya_t5x.tasks.eval` is run the way its kind says:

- `rank`: every option of every example is scored (`rank_classification`);
  accuracy per prompt template, and the language's score is the median over
  templates (`eval_metrics.median_over_prompts`; one template: itself).
- `generate`: greedy decoding, then the benchmark's metric (spBLEU/chrF++,
  RougeLsum, SQuAD F1/EM).
- `open_ended`: sampling with the paper's settings (`PAPER_SAMPLING`), one
  completion per prompt, written to `<output_dir>/generations/<set>.jsonl`
  (`id`, `language`, `inputs`, `prediction`, `targets`) for `aya_t5x.judge`;
  they get no score here (a judge gives win rates).

Prompts longer than `max_input_length` tokens are truncated at the end that
matters less (`Benchmark.keep_prompt_end`) and counted. `evaluate` is the
gin entry point of `python -m aya_t5x.eval`; `TrainingEval` runs a chosen
subset during training (`train.train(benchmark_eval=...)`).
"""

import collections
import dataclasses
import importlib
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from absl import logging
import gin
import jax
import seqio

from aya_t5x import checkpoints
from aya_t5x import decoding
from aya_t5x import eval_metrics
from aya_t5x import eval_report
from aya_t5x import gcs_access
from aya_t5x import gin_utils
from aya_t5x import inference
from aya_t5x import model as model_lib
from aya_t5x import partitioning
from aya_t5x import progress
from aya_t5x import rank_classification
from aya_t5x import sources
from aya_t5x import xlsum_rouge

# The paper's open-ended decoding (section 4.2).
PAPER_SAMPLING = decoding.DecodingConfig(
    method="sample", top_p=0.8, temperature=0.9, max_new_tokens=256)
TASKS_MODULE = "aya_t5x.tasks.eval"
PyTree = Any
# Whether `evaluate` is past set-up (suite, checkpoint): errors while the
# suite runs are not usage errors of the eval CLI.
SETUP = gin_utils.SetupPhase()


@dataclasses.dataclass(frozen=True)
class SuiteConfig:
  """Which benchmarks, languages and data (gin: `evaluation.SuiteConfig`)."""

  benchmarks: tuple[str, ...]  # BENCHMARKS: names in aya_t5x.tasks.eval.
  # LANGUAGES: keep only these language codes (None: each benchmark's own).
  languages: tuple[str, ...] | None = None
  max_examples: int | None = None  # MAX_EXAMPLES: rows per task (None: all).
  # EVAL_DATA_DIR: a mirror laid out like the Hub (sets AYA_DATA_DIR);
  # None: AYA_DATA_DIR as set, else the Hub.
  data_dir: str | None = None
  # MAX_NEW_TOKENS: caps every benchmark's generation budget (None: each
  # benchmark's own: FLORES 256, XLSum 128, TyDiQA 32, open-ended 256).
  max_new_tokens: int | None = None
  open_ended_decoding: decoding.DecodingConfig = PAPER_SAMPLING
  # SKIP_MISSING_LANGUAGES: a language whose files the mirror lacks is
  # skipped and listed (details.json, report notes) instead of failing the
  # run; for partial mirrors such as the shipped sample.
  skip_missing_languages: bool = False
  module: str = TASKS_MODULE  # Imported to register the benchmarks.

  def __post_init__(self):
    if isinstance(self.benchmarks, str) or not self.benchmarks:
      raise ValueError(f"BENCHMARKS must be a non-empty tuple of names, got "
                       f"{self.benchmarks!r}.")
    for name, value in (("MAX_EXAMPLES", self.max_examples),
                        ("MAX_NEW_TOKENS", self.max_new_tokens)):
      if value is not None and (not isinstance(value, int) or value < 1):
        raise ValueError(f"{name} must be None or an integer >= 1, got "
                         f"{value!r}.")
    if self.languages is not None and isinstance(self.languages, str):
      raise ValueError(f"LANGUAGES must be a tuple of codes, got "
                       f"{self.languages!r}.")


@dataclasses.dataclass
class SuiteResult:
  """What a suite run produced."""

  # {benchmark: {language: {metric: value}}}, as results.json.
  results: dict = dataclasses.field(default_factory=dict)
  # {benchmark: {language: examples scored or generated}}.
  counts: dict = dataclasses.field(default_factory=dict)
  # {benchmark: {language: {template: accuracy}}} for rank benchmarks.
  per_template: dict = dataclasses.field(default_factory=dict)
  # {task: {"reason (field)": rows skipped}}.
  skipped: dict = dataclasses.field(default_factory=dict)
  # {benchmark: JSONL path} of predictions and open-ended generations.
  outputs: dict = dataclasses.field(default_factory=dict)
  # {benchmark: [languages without files]} (SKIP_MISSING_LANGUAGES).
  missing: dict = dataclasses.field(default_factory=dict)
  truncated_prompts: int = 0

  def details(self) -> dict:
    return {"counts": self.counts, "per_template": self.per_template,
            "skipped_rows": self.skipped, "outputs": self.outputs,
            "missing_languages": self.missing,
            "truncated_prompts": self.truncated_prompts}


def load_benchmarks(config: SuiteConfig) -> list:
  """The suite's benchmarks (registering them by importing `module`).

  Raises:
    ValueError: an unknown benchmark name (the message lists the known).
  """
  importlib.import_module(config.module)
  from aya_t5x.tasks.eval import benchmark  # pylint: disable=g-import-not-at-top
  return [benchmark.get(name) for name in config.benchmarks]


def _chosen_languages(bench, config: SuiteConfig) -> list[str]:
  if config.languages is None or "*" in bench.tasks:
    return list(bench.tasks)
  return [l for l in bench.tasks if l in config.languages]


def check_suite(config: SuiteConfig) -> list:
  """The suite's benchmarks (`load_benchmarks`), checked against LANGUAGES.

  Raises:
    ValueError: an unknown benchmark, or LANGUAGES that match no task.
  """
  benches = load_benchmarks(config)
  if config.languages is not None and not any(
      _chosen_languages(b, config) for b in benches):
    raise ValueError(f"LANGUAGES={config.languages} matches no language of "
                     f"{config.benchmarks}.")
  return benches


def check_data_reachable(config: SuiteConfig, benches: Sequence) -> None:
  """Lists one task's files per benchmark before any checkpoint loads, so
  a Hub that cannot be reached fails in seconds with one line
  (`hub_access.HubUnreachable`); a language a mirror lacks is left to
  SKIP_MISSING_LANGUAGES."""
  from aya_t5x.tasks.eval import benchmark  # pylint: disable=g-import-not-at-top
  with sources.data_dir(config.data_dir):
    for bench in benches:
      for language in _chosen_languages(bench, config)[:1]:
        spec = benchmark.eval_source(bench.tasks[language]).spec
        try:
          spec.files.resolve(spec.split)
        except FileNotFoundError:
          pass


class _Encoder:
  """Prompt and option tokens, truncating prompts at the chosen end."""

  def __init__(self, vocabulary: seqio.Vocabulary, max_input_length: int):
    self.vocabulary = vocabulary
    self.max_input_length = max_input_length
    self.truncated = 0

  def prompt(self, text: str, keep_end: bool) -> list[int]:
    ids = list(self.vocabulary.encode(text))
    room = self.max_input_length - 1
    if len(ids) > room:
      self.truncated += 1
      ids = ids[-room:] if keep_end else ids[:room]
    return ids + [decoding.EOS_ID]

  def target(self, text: str) -> list[int]:
    return list(self.vocabulary.encode(text)) + [decoding.EOS_ID]


def _examples(bench, language: str, config: SuiteConfig, result: SuiteResult):
  from aya_t5x.tasks.eval import benchmark  # pylint: disable=g-import-not-at-top
  task = bench.tasks[language]
  source = benchmark.eval_source(task)
  before = collections.Counter(source.skipped)
  examples = source.examples(limit=config.max_examples)
  new = collections.Counter(source.skipped)
  new.subtract(before)
  skipped = {f"{reason} ({field})": n for (reason, field), n in new.items()
             if n}
  if skipped:
    result.skipped[task] = skipped
  if config.languages is not None and language == "*":
    examples = [e for e in examples if e.language in config.languages]
  return examples


def _rank_scores(predictor: inference.Predictor, encoder: _Encoder,
                 bench, examples) -> dict[str, dict[str, float]]:
  """{language: {template: accuracy}} of rank-classified examples."""
  ranked = rank_classification.rank(
      predictor.score_ids,
      [encoder.prompt(e.inputs, bench.keep_prompt_end) for e in examples],
      [[encoder.target(o) for o in e.options] for e in examples])
  groups = collections.defaultdict(lambda: ([], []))
  for example, r in zip(examples, ranked):
    labels, choices = groups[(example.language, example.template)]
    labels.append(example.label)
    choices.append(r.choice)
  out = collections.defaultdict(dict)
  for (language, template), (labels, choices) in sorted(groups.items()):
    out[language][template] = eval_metrics.accuracy(labels,
                                                    choices)["accuracy"]
  return out


def _decoding_for(bench, config: SuiteConfig) -> decoding.DecodingConfig:
  from aya_t5x.tasks.eval import benchmark  # pylint: disable=g-import-not-at-top
  base = (config.open_ended_decoding if bench.kind == benchmark.OPEN_ENDED
          else decoding.DecodingConfig(method="greedy"))
  budget = (base.max_new_tokens if bench.kind == benchmark.OPEN_ENDED
            else bench.max_new_tokens)
  if config.max_new_tokens is not None:
    budget = min(budget, config.max_new_tokens)
  return dataclasses.replace(base, max_new_tokens=budget,
                             min_new_tokens=min(base.min_new_tokens, budget))


def _generate(predictor: inference.Predictor, encoder: _Encoder, bench,
              examples, config: decoding.DecodingConfig) -> list[str]:
  """Predictions in example order; generated sorted by prompt length."""
  prompts = [encoder.prompt(e.inputs, bench.keep_prompt_end)
             for e in examples]
  order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
  generations = predictor.generate_ids([prompts[i] for i in order], config)
  texts = [""] * len(prompts)
  for i, generation in zip(order, generations):
    texts[i] = generation.text
  return texts


def _write_jsonl(path: str, examples, predictions: Sequence[str]) -> None:
  if jax.process_index() != 0:
    return
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w", encoding="utf-8") as f:
    for example, prediction in zip(examples, predictions):
      f.write(json.dumps({
          "id": example.id, "language": example.language,
          "inputs": example.inputs, "prediction": prediction,
          "targets": list(example.targets)}, ensure_ascii=False) + "\n")


def _run_benchmark(predictor, encoder, bench, config: SuiteConfig,
                   result: SuiteResult, output_dir: str | None) -> None:
  from aya_t5x.tasks.eval import benchmark  # pylint: disable=g-import-not-at-top
  examples = []
  for language in _chosen_languages(bench, config):
    try:
      examples.extend(_examples(bench, language, config, result))
    except FileNotFoundError:
      if not config.skip_missing_languages:
        raise
      result.missing.setdefault(bench.name, []).append(language)
  if not examples:
    logging.warning("%s: no examples for the chosen languages.", bench.name)
    return
  result.counts[bench.name] = dict(collections.Counter(
      e.language for e in examples))
  if bench.kind == benchmark.RANK:
    per_template = _rank_scores(predictor, encoder, bench, examples)
    result.per_template[bench.name] = dict(per_template)
    result.results[bench.name] = {
        language: {"accuracy": eval_metrics.median_over_prompts(scores)}
        for language, scores in per_template.items()}
    return
  predictions = _generate(predictor, encoder, bench, examples,
                          _decoding_for(bench, config))
  if output_dir is not None:
    folder = ("generations" if bench.kind == benchmark.OPEN_ENDED
              else "predictions")
    path = os.path.join(output_dir, folder, f"{bench.name}.jsonl")
    _write_jsonl(path, examples, predictions)
    result.outputs[bench.name] = path
  if bench.kind == benchmark.GENERATE:
    result.results[bench.name] = _generative_scores(bench, examples,
                                                    predictions)


def _generative_scores(bench, examples, predictions) -> dict:
  by_language = collections.defaultdict(lambda: ([], []))
  for example, prediction in zip(examples, predictions):
    targets, preds = by_language[example.language]
    targets.append(example.targets)
    preds.append(prediction)
  return {language: dict(bench.score(language, targets, preds))
          for language, (targets, preds) in by_language.items()}


def run_suite(predictor: inference.Predictor, config: SuiteConfig,
              output_dir: str | None = None) -> SuiteResult:
  """Runs every benchmark of `config` with `predictor` (module docstring).

  Args:
    predictor: the model to evaluate.
    config: benchmarks, languages and data.
    output_dir: where predictions and open-ended generations go (JSONL);
      None writes nothing.

  Raises:
    ValueError: an unknown benchmark, or LANGUAGES that match no task.
  """
  with sources.data_dir(config.data_dir):
    return _run_suite(predictor, config, output_dir)


def _run_suite(predictor: inference.Predictor, config: SuiteConfig,
               output_dir: str | None) -> SuiteResult:
  benches = check_suite(config)
  encoder = _Encoder(predictor.vocabulary, predictor.max_input_length)
  result = SuiteResult()
  with progress.Progress(len(benches), "eval", unit="benchmark",
                         enabled=jax.process_index() == 0) as bar:
    for bench in benches:
      logging.info("Evaluating %s", bench.name)
      bar.set(benchmark=bench.name)
      _run_benchmark(predictor, encoder, bench, config, result, output_dir)
      bar.set(benchmark=bench.name, examples=sum(
          sum(c.values()) for c in result.counts.values()))
      bar.update()
  result.truncated_prompts = encoder.truncated
  return result


def _xlsum_note(per_language: dict) -> str:
  """Which ROUGE each XL-Sum key is, and why the stemmed one is missing
  where it is."""
  from aya_t5x.tasks.eval import generative  # pylint: disable=g-import-not-at-top
  return xlsum_rouge.description({
      code: generative.XLSUM_CONFIG_OF.get(code, code)
      for code, metrics in per_language.items()
      if xlsum_rouge.STEMMED_KEY not in metrics})


def report_notes(result: SuiteResult) -> dict[str, str]:
  """Notes under the tables: which BLEU and ROUGE, what was skipped or
  truncated."""
  notes = {}
  for name in ("flores_x_en", "flores_en_x"):
    if name in result.results:
      notes[name] = eval_metrics.bleu_tokenizer_description()
  if "xlsum" in result.results:
    notes["xlsum"] = _xlsum_note(result.results["xlsum"])
  generated = {n: p for n, p in result.outputs.items()
               if n not in result.results}
  if generated:
    folder = os.path.dirname(next(iter(generated.values())))
    notes["open-ended generations"] = (
        f"{', '.join(generated)} in {folder} (judge with aya_t5x.judge)")
  missing = sum(len(v) for v in result.missing.values())
  if missing:
    notes["languages without data"] = (
        f"{missing} task(s) skipped (SKIP_MISSING_LANGUAGES), see "
        "details.json")
  skipped = sum(sum(v.values()) for v in result.skipped.values())
  if skipped:
    notes["skipped rows"] = (f"{skipped} bad row(s), see details.json: "
                             f"{result.skipped}")
  if result.truncated_prompts:
    notes["truncated prompts"] = str(result.truncated_prompts)
  return notes


def write_outputs(result: SuiteResult, output_dir: str) -> dict[str, str]:
  """results.json/csv/md and plots (`eval_report`), plus details.json."""
  paths = eval_report.write_reports(result.results, output_dir,
                                    notes=report_notes(result),
                                    counts=result.counts)
  paths["details"] = os.path.join(output_dir, "details.json")
  with open(paths["details"], "w", encoding="utf-8") as f:
    json.dump(result.details(), f, indent=2, ensure_ascii=False)
  return paths


# ------------------------------------------------------------- the CLI ---


@dataclasses.dataclass(frozen=True)
class EvalConfig:
  """The checkpoint and the outputs (gin: `evaluation.EvalConfig`)."""

  # CHECKPOINT_PATH: a checkpoint_N folder (ours or upstream T5X), a
  # MODEL_DIR (its newest checkpoint), or a Hugging Face folder.
  checkpoint_path: str
  output_dir: str  # EVAL_OUTPUT_DIR: results.*, plots/, JSONL outputs.
  batch_size: int = 8  # BATCH_SIZE: rows per scoring/decoding call.
  max_input_length: int = 1024  # MAX_INPUT_LENGTH: longer prompts cut.
  # EVAL_TITLE: printed above the table (e.g. what the numbers can mean).
  title: str | None = None
  # PRINT_DETAILS: also print every benchmark's per-language table
  # (results.md always has them).
  print_details: bool = True

  def __post_init__(self):
    for name, value in (("CHECKPOINT_PATH", self.checkpoint_path),
                        ("EVAL_OUTPUT_DIR", self.output_dir)):
      if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got "
                         f"{value!r}.")
    gcs_access.check_all({"CHECKPOINT_PATH": self.checkpoint_path,
                          "EVAL_OUTPUT_DIR": self.output_dir})
    if self.batch_size < 1 or self.max_input_length < 2:
      raise ValueError(f"BATCH_SIZE={self.batch_size} must be >= 1 and "
                       f"MAX_INPUT_LENGTH={self.max_input_length} >= 2.")


def resolve_checkpoint(path: str) -> str:
  """`path`, or the newest finished checkpoint_N when it is a MODEL_DIR.

  Raises:
    FileNotFoundError: a local path that does not exist.
  """
  if "://" not in path and not os.path.exists(path):
    raise FileNotFoundError(f"CHECKPOINT_PATH {path!r} does not exist.")
  if os.path.basename(path.rstrip("/")).startswith(
      checkpoints.STEP_PREFIX + "_"):
    return path
  steps = checkpoints.committed_steps(path)
  return str(checkpoints.step_dir(path, steps[-1])) if steps else path


@gin.configurable
def evaluate(*, model: model_lib.EncoderDecoderModel,
             vocabulary: seqio.Vocabulary, config: EvalConfig,
             suite: SuiteConfig,
             partitioning_config: partitioning.PartitioningConfig = (
                 partitioning.PartitioningConfig())) -> dict[str, Any]:
  """Evaluates a checkpoint on a suite and writes the reports."""
  # Unknown names and an unreachable Hub fail before the checkpoint loads.
  check_data_reachable(suite, check_suite(suite))
  checkpoint = resolve_checkpoint(config.checkpoint_path)
  predictor = inference.Predictor.from_checkpoint(
      model, checkpoint, vocabulary, batch_size=config.batch_size,
      max_input_length=config.max_input_length,
      partitioner=partitioning.Partitioner(partitioning_config))
  SETUP.finish()
  result = run_suite(predictor, suite, config.output_dir)
  paths = {}
  if jax.process_index() == 0:
    paths = write_outputs(result, config.output_dir)
  return {"checkpoint": checkpoint, "result": result, "paths": paths,
          "config": config}


# ------------------------------------------------------ during training ---


@gin.configurable
class TrainingEval:
  """Benchmarks on a chosen subset at every EVAL_PERIOD of a training run.

  `train.train(benchmark_eval=...)` calls it with the current parameters;
  it writes `MODEL_DIR/benchmarks/step_<N>/results.*` and returns the
  overall average of each benchmark's metrics for eval_metrics.jsonl and
  TensorBoard (`benchmarks/<benchmark>/<metric>`). Keep the subset small
  (MAX_EXAMPLES, LANGUAGES): it runs inside the training job.
  """

  def __init__(self, vocabulary: seqio.Vocabulary, suite: SuiteConfig,
               batch_size: int = 8, max_input_length: int = 512):
    self.vocabulary = vocabulary
    self.suite = suite
    self.batch_size = batch_size
    self.max_input_length = max_input_length
    self._predictor: inference.Predictor | None = None
    load_benchmarks(suite)  # A typo fails at start-up, not at the first eval.

  def __call__(self, model: model_lib.EncoderDecoderModel, params: PyTree,
               partitioner: partitioning.Partitioner, step: int,
               model_dir: str) -> dict[str, float]:
    if self._predictor is None:  # One predictor: its programs compile once.
      self._predictor = inference.Predictor(
          model, params, self.vocabulary, batch_size=self.batch_size,
          max_input_length=self.max_input_length, partitioner=partitioner)
    self._predictor.params = params
    output_dir = os.path.join(model_dir, "benchmarks", f"step_{step}")
    result = run_suite(self._predictor, self.suite, output_dir)
    if jax.process_index() == 0:
      write_outputs(result, output_dir)
    return flat_averages(result.results)


def flat_averages(results: Mapping) -> dict[str, float]:
  """{"benchmarks/<benchmark>/<metric>": average over languages}."""
  out = {}
  for bench, per_language in results.items():
    for metric in eval_report.metric_names(per_language):
      averages = eval_report.group_averages(per_language, metric)
      if eval_report.ALL in averages:
        out[f"benchmarks/{bench}/{metric}"] = averages[eval_report.ALL][0]
  return out
