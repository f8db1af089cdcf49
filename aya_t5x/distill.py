r"""Safety context distillation data: teacher answers with a safety preamble.

    python -m aya_t5x.distill --gin_file=gin/models/mt5_xxl.gin \
      --gin_file=gin/runs/distill.gin \
      --gin.TEACHER_CHECKPOINT="'/runs/aya/checkpoint_30000'" \
      --gin.PROMPT_FILES="('advbench_xsafety_101.jsonl',)" \
      --gin.DISTILL_OUTPUT_DIR="'/data/safety'"

As the Aya paper does (section 6, App. J; docs/safety.md): each training
prompt (`safety_prompts`) is given to the teacher with the safety preamble
in front; the teacher samples an answer (top-p 0.8, temperature 0.9); the
paper's filters drop answers under 20 or over 1,000 characters and
repetitive ones; a judge (optional, any OpenAI-compatible endpoint) drops
answers that are still harmful. The student then learns prompt WITHOUT the
preamble -> answer: `train.jsonl` is in the schema of the safety task
(`prompt`, `response`, `language`), so `AYA_SAFETY_DISTILLATION_DIR=
DISTILL_OUTPUT_DIR` feeds `aya_translation_heavy_safe` ("Aya Safe").

The teacher is one of our checkpoints (TEACHER_CHECKPOINT, through the
`Predictor`) or a served model (TEACHER_URL + TEACHER_MODEL, the judge's
client). Writes into DISTILL_OUTPUT_DIR:

  teacher.jsonl   every prompt's teacher input, answer, verdict and whether
                  it was kept (and why not), appended batch by batch: a cut
                  run is resumed where it stopped, without duplicates.
  train.jsonl     the kept rows, for the safety task.
  heldout.jsonl   the test split's prompts ({id, language, inputs}), for
                  `aya_t5x.infer` and then `aya_t5x.harmfulness`.
  summary.json    counts per language and per drop reason, and the prompt
                  rows skipped while reading.
"""

import collections
import concurrent.futures
import dataclasses
import importlib
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

# Run as a program: hide native start-up noise before the heavy imports
# (aya_t5x.startup; --verbose shows it).
from aya_t5x import startup  # pylint: disable=g-bad-import-order
if __name__ == "__main__":
  startup.begin(sys.argv)

import gin
import seqio

from aya_t5x import decoding
from aya_t5x import generators
from aya_t5x import gin_utils
from aya_t5x import harm_judge
from aya_t5x import inference
from aya_t5x import jsonl_io
from aya_t5x import model as model_lib
from aya_t5x import partitioning
from aya_t5x import safety_prompts
from aya_t5x.tasks import safety

# The paper's preamble (App. J), in English; it was machine-translated into
# each language: give translations in `DistillConfig.preambles`.
PAPER_PREAMBLE = (
    "Does the following request contain harmful, unethical, racist, sexist, "
    "toxic, dangerous, offensive or illegal content or intent? If yes, "
    "explain that you do not engage in these type of requests.")
# The paper's teacher sampling. The new-token budget is ours (the paper
# states none; its open-ended budget is 256 tokens, its filter 1,000 chars).
PAPER_TEACHER_SAMPLING = decoding.DecodingConfig(
    method="sample", top_p=0.8, temperature=0.9, max_new_tokens=256)
KEPT = "kept"
JUDGED_HARMFUL = "judged_harmful"
_SETUP = gin_utils.SetupPhase()


@dataclasses.dataclass(frozen=True)
class DistillConfig:
  """Prompts, preamble and outputs (gin: `distill.DistillConfig`)."""

  output_dir: str  # DISTILL_OUTPUT_DIR
  prompt_files: tuple[str, ...] = ()  # PROMPT_FILES: JSONL prompt files.
  hub_sets: tuple[str, ...] = ()  # PROMPT_SETS: advbench, aya_redteaming.
  languages: tuple[str, ...] | None = None  # LANGUAGES (None: all).
  # TEST_FRACTION: prompts without a split go to test at this rate.
  test_fraction: float = safety_prompts.DEFAULT_TEST_FRACTION
  preamble: str = PAPER_PREAMBLE  # PREAMBLE: the fallback for any language.
  # PREAMBLES: {language code: the preamble in that language}.
  preambles: Mapping[str, str] = dataclasses.field(default_factory=dict)
  # How the preamble and the prompt are joined (ours: a blank line).
  separator: str = "\n\n"
  batch_size: int = 8  # BATCH_SIZE: prompts per teacher call.
  max_examples: int | None = None  # MAX_EXAMPLES: first N training prompts.

  def __post_init__(self):
    if not isinstance(self.output_dir, str) or not self.output_dir:
      raise ValueError(f"DISTILL_OUTPUT_DIR must be a non-empty string, got "
                       f"{self.output_dir!r}.")
    if self.batch_size < 1:
      raise ValueError(f"BATCH_SIZE={self.batch_size} must be >= 1.")
    if isinstance(self.prompt_files, str) or isinstance(self.hub_sets, str):
      raise ValueError("PROMPT_FILES and PROMPT_SETS are tuples, e.g. "
                       "('prompts.jsonl',).")
    for name in self.hub_sets:
      if name not in safety_prompts.HUB_SETS:
        raise ValueError(f"PROMPT_SETS: unknown set {name!r}; sets: "
                         f"{list(safety_prompts.HUB_SETS)}.")

  def teacher_input(self, prompt: safety_prompts.Prompt) -> str:
    """What the teacher sees: the preamble, then the prompt."""
    preamble = self.preambles.get(prompt.language, self.preamble)
    return preamble + self.separator + prompt.text

  def path(self, name: str) -> str:
    return os.path.join(self.output_dir, name)


# A judge of one (prompt, response, language).
JudgeFn = Callable[[str, str, str], harm_judge.Judgement]


def endpoint_judge(client) -> JudgeFn:
  """A JudgeFn asking `client` (a `judge.JudgeClient`); `_judge_batch`
  asks about a batch's answers in parallel."""
  return lambda prompt, response, language: harm_judge.judge_one(
      prompt, response, language, client.complete, client.model)


def drop_reason(response: str) -> str | None:
  """The paper's filters (tasks/safety.py): why an answer is dropped."""
  row = {"targets": response}
  for row_filter in safety.filters():
    found = row_filter.check(row)
    if found is not None:
      return found[0]
  return None


def _judge_batch(judge: JudgeFn | None, rows: Sequence[dict],
                 responses: Sequence[str]) -> list[harm_judge.Judgement | None]:
  """Judgements of the answers that passed the filters (None elsewhere)."""
  if judge is None:
    return [None] * len(rows)
  def one(pair):
    row, response = pair
    if drop_reason(response) is not None:
      return None
    return judge(row["prompt"], response, row["language"])
  with concurrent.futures.ThreadPoolExecutor(4) as pool:
    return list(pool.map(one, zip(rows, responses)))


def _outcome(response: str, judgement: harm_judge.Judgement | None) -> str:
  reason = drop_reason(response)
  if reason is not None:
    return reason
  if judgement is None or judgement.verdict in (harm_judge.REFUSAL,
                                                harm_judge.SAFE):
    return KEPT
  if judgement.verdict == harm_judge.HARMFUL:
    return JUDGED_HARMFUL
  return f"judge_{judgement.verdict}"  # judge_unparsable, judge_error


def _log_rows(prompts: Sequence[safety_prompts.Prompt],
              config: DistillConfig) -> list[dict]:
  return [{"index": i, "id": p.id, "language": p.language,
           "prompt": p.text, "inputs": config.teacher_input(p)}
          for i, p in enumerate(prompts)]


def generate_log(prompts: Sequence[safety_prompts.Prompt],
                 teacher: generators.Generator, config: DistillConfig,
                 judge: JudgeFn | None = None) -> int:
  """Appends the teacher's answers to teacher.jsonl; returns the index it
  resumed at (rows already there are not asked again)."""
  rows = _log_rows(prompts, config)
  path = config.path("teacher.jsonl")
  start = jsonl_io.resume_point(path, rows)
  if isinstance(teacher, generators.ModelGenerator):
    teacher.batches_done = start // config.batch_size
  for begin in range(start, len(rows), config.batch_size):
    batch = rows[begin:begin + config.batch_size]
    responses = teacher.generate([r["inputs"] for r in batch])
    judgements = _judge_batch(judge, batch, responses)
    jsonl_io.append_jsonl(path, [
        dict(row, response=response, outcome=_outcome(response, j),
             verdict=j.verdict if j else None)
        for row, response, j in zip(batch, responses, judgements)])
  return start


def _read_log(path: str) -> list[dict]:
  with open(path, encoding="utf-8") as f:
    return [json.loads(line) for line in f if line.strip()]


def write_outputs(config: DistillConfig, heldout: Sequence[
    safety_prompts.Prompt], report: safety_prompts.PromptReport,
                  resumed_at: int) -> dict[str, Any]:
  """train.jsonl, heldout.jsonl and summary.json from teacher.jsonl."""
  log = _read_log(config.path("teacher.jsonl"))
  with open(config.path("train.jsonl"), "w", encoding="utf-8") as f:
    for row in log:
      if row["outcome"] == KEPT:
        f.write(json.dumps({"id": row["id"], "prompt": row["prompt"],
                            "response": row["response"],
                            "language": row["language"]},
                           ensure_ascii=False) + "\n")
  with open(config.path("heldout.jsonl"), "w", encoding="utf-8") as f:
    for p in heldout:
      f.write(json.dumps({"id": p.id, "language": p.language,
                          "inputs": p.text}, ensure_ascii=False) + "\n")
  by_language = collections.defaultdict(collections.Counter)
  for row in log:
    by_language[row["language"]][row["outcome"]] += 1
  summary = {
      "prompts": len(log), "kept": sum(r["outcome"] == KEPT for r in log),
      "resumed_at": resumed_at, "heldout_prompts": len(heldout),
      "by_reason": dict(collections.Counter(r["outcome"] for r in log)),
      "by_language": {k: dict(v) for k, v in sorted(by_language.items())},
      "skipped_prompt_rows": dict(report.skipped),
      "outputs": {n: config.path(n) for n in
                  ("teacher.jsonl", "train.jsonl", "heldout.jsonl")}}
  with open(config.path("summary.json"), "w", encoding="utf-8") as f:
    json.dump(summary, f, indent=2, ensure_ascii=False)
  return summary


def load_split_prompts(config: DistillConfig):
  """(training prompts, held-out prompts, report) of the config's sources."""
  prompts, report = safety_prompts.load_prompts(
      config.prompt_files, config.hub_sets, language_codes=config.languages,
      test_fraction=config.test_fraction)
  train = [p for p in prompts if p.split == safety_prompts.TRAIN]
  heldout = [p for p in prompts if p.split == safety_prompts.TEST]
  if config.max_examples is not None:
    train = train[:config.max_examples]
  return train, heldout, report


def run_distillation(config: DistillConfig, teacher: generators.Generator,
                     judge: JudgeFn | None = None) -> dict[str, Any]:
  """Loads prompts, asks the teacher, filters and writes (module doc)."""
  train, heldout, report = load_split_prompts(config)
  os.makedirs(config.output_dir, exist_ok=True)
  resumed_at = generate_log(train, teacher, config, judge)
  return write_outputs(config, heldout, report, resumed_at)


# ------------------------------------------------------------- the CLI ---


@dataclasses.dataclass(frozen=True)
class TeacherConfig:
  """Which teacher and judge (gin: `distill.TeacherConfig`)."""

  # TEACHER_CHECKPOINT: one of our checkpoints (or T5X's, or an HF folder).
  checkpoint_path: str | None = None
  # TEACHER_URL + TEACHER_MODEL: instead, a served OpenAI-compatible model.
  url: str | None = None
  model: str | None = None
  # JUDGE_URL + JUDGE_MODEL: drop answers judged harmful (None: no judge).
  judge_url: str | None = None
  judge_model: str | None = None
  api_key_env: str | None = None  # API_KEY_ENV: variable holding the key.
  max_input_length: int = 1024  # MAX_INPUT_LENGTH (checkpoint teacher).

  def __post_init__(self):
    if (self.checkpoint_path is None) == (self.url is None):
      raise ValueError("Set exactly one of TEACHER_CHECKPOINT and TEACHER_URL"
                       f"; got {self.checkpoint_path!r} and {self.url!r}.")
    if self.url is not None and not self.model:
      raise ValueError("TEACHER_URL needs TEACHER_MODEL.")
    if (self.judge_url is None) != (self.judge_model is None):
      raise ValueError("Set both JUDGE_URL and JUDGE_MODEL, or neither.")


def _teacher(teacher: TeacherConfig, sampling: decoding.DecodingConfig,
             batch_size: int, model, vocabulary,
             partitioning_config) -> generators.Generator:
  if teacher.url is not None:
    return generators.EndpointConfig(
        teacher.url, teacher.model, teacher.api_key_env,
        temperature=sampling.temperature, top_p=sampling.top_p,
        max_tokens=sampling.max_new_tokens).generator()
  predictor = inference.Predictor.from_checkpoint(
      model, teacher.checkpoint_path, vocabulary, batch_size=batch_size,
      max_input_length=teacher.max_input_length,
      partitioner=partitioning.Partitioner(partitioning_config))
  return generators.ModelGenerator(predictor, sampling)


@gin.configurable
def distill(*, config: DistillConfig, teacher: TeacherConfig,
            model: model_lib.EncoderDecoderModel | None = None,
            vocabulary: seqio.Vocabulary | None = None,
            sampling: decoding.DecodingConfig = PAPER_TEACHER_SAMPLING,
            partitioning_config: partitioning.PartitioningConfig = (
                partitioning.PartitioningConfig())) -> dict[str, Any]:
  """The gin entry point: builds the teacher and judge, then runs."""
  train, _, _ = load_split_prompts(config)  # Bad sources fail in set-up.
  if not train:
    raise ValueError("No training prompts in PROMPT_FILES / PROMPT_SETS for "
                     f"LANGUAGES={config.languages}.")
  generator = _teacher(teacher, sampling, config.batch_size, model,
                       vocabulary, partitioning_config)
  judge = None
  if teacher.judge_url is not None:
    judge = endpoint_judge(generators.EndpointConfig(
        teacher.judge_url, teacher.judge_model,
        teacher.api_key_env).client())
  _SETUP.finish()
  return run_distillation(config, generator, judge)


def main(command_line: gin_utils.CommandLine) -> dict[str, Any]:
  """Parses gin, then distils; set-up mistakes are usage errors (exit 2)."""
  gin_utils.parse_gin(command_line.gin_files, command_line.gin_bindings,
                      command_line.gin_search_paths)
  startup.ready()
  with _SETUP.usage_errors(TypeError, ValueError, FileNotFoundError):
    summary = distill()  # pylint: disable=missing-kwoa  (gin supplies them)
  print(f"aya_t5x.distill: {summary['kept']} of {summary['prompts']} "
        f"answers kept (resumed after {summary['resumed_at']}); drops "
        f"{summary['by_reason']}; -> {summary['outputs']['train.jsonl']}",
        flush=True)
  return summary


def console_main() -> None:
  gin_utils.run(main)


if __name__ == "__main__":
  importlib.import_module("aya_t5x.distill").console_main()
