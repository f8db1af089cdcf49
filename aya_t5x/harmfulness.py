r"""Harmful-generation rate of a model's answers to adversarial prompts.

  python -m aya_t5x.harmfulness --generations=EVAL/generations/harmfulness.jsonl \
      --judge_url=http://localhost:8000/v1 --judge_model=NAME \
      --output_dir=DIR [--api_key_env=VAR] [--num_workers=4] [--fresh]

The Aya paper (section 6) reports the share of harmful generations to
held-out adversarial prompts, per language, before and after safety
distillation (Aya vs Aya Safe). The generations come from `python -m
aya_t5x.eval --gin_file=gin/eval/harmfulness.gin` (the red-teaming
benchmark) or from `python -m aya_t5x.infer` on `heldout.jsonl` of
`aya_t5x.distill`: JSONL lines with `language`, `inputs`, `prediction` and
an `id` (or infer's `index`). A judge (`aya_t5x.harm_judge`, any
OpenAI-compatible endpoint) labels each answer harmful, refusal or safe.

Writes DIR/results.json, results.csv, averages.csv, results.md and a plot
(`eval_report`: per language and averaged over HR/MR/LR, as every suite),
with `harmful_rate` and `refusal_rate` in percent of the judged answers;
DIR/judgments.jsonl (every label and the judge's reply) and
DIR/details.json (counts, unjudged answers, skipped lines). Two runs
compare with `python -m aya_t5x.eval_report compare A/results.json
B/results.json --names=aya,aya_safe`. Re-running reuses the parsable
judgments of unchanged requests. Exit status: 0; 1 if some answers stayed
unjudged; 2 on a usage error.
"""

import argparse
import collections
import concurrent.futures
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence

# Run as a program: hide native start-up noise before the heavy imports
# (aya_t5x.startup; --verbose shows it).
from aya_t5x import startup  # pylint: disable=g-bad-import-order
if __name__ == "__main__":
  startup.begin(sys.argv)

from aya_t5x import eval_report
from aya_t5x import generators
from aya_t5x import harm_judge
from aya_t5x import jsonl_io
from aya_t5x import judge

BENCHMARK = "harmfulness"
JUDGMENTS_FILE = "judgments.jsonl"


@dataclasses.dataclass(frozen=True)
class Answer:
  """One generated answer to rate."""

  id: str
  language: str
  inputs: str
  prediction: str


def read_answers(path: str) -> tuple[list[Answer], dict[str, int]]:
  """Answers of a generations file, and skipped lines counted by reason."""
  answers, report, seen = [], jsonl_io.InputReport(), set()
  fields = ("language", "inputs", "prediction")
  for where, row in jsonl_io.jsonl_objects(path, report, "--generations"):
    if not all(isinstance(row.get(k), str) for k in fields):
      report.skip(where, f"no string {'/'.join(fields)}")
      continue
    answer_id = str(row.get("id", row.get("index", where)))
    if answer_id in seen:
      report.skip(where, "repeated id")
      continue
    seen.add(answer_id)
    answers.append(Answer(answer_id, row["language"], row["inputs"],
                          row["prediction"]))
  return answers, report.skipped


def _previous(output_dir: str) -> dict[str, harm_judge.Judgement]:
  """Parsable judgements of an earlier run, by request key."""
  path = os.path.join(output_dir, JUDGMENTS_FILE)
  previous = {}
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      for line in f:
        try:
          row = json.loads(line)
        except json.JSONDecodeError:
          continue
        if row.get("verdict") in harm_judge.VERDICTS:
          previous[row["key"]] = harm_judge.Judgement(row["verdict"],
                                                      row["raw"], row["key"])
  return previous


def judge_answers(answers: Sequence[Answer], complete: Callable[[list], str],
                  model: str, num_workers: int = 4,
                  previous: Mapping[str, harm_judge.Judgement] | None = None
                  ) -> list[harm_judge.Judgement]:
  """Every answer's judgement, in order (the first asked alone: an
  endpoint that cannot answer stops the run instead of failing them all)."""
  def one(answer: Answer) -> harm_judge.Judgement:
    return harm_judge.judge_one(answer.inputs, answer.prediction,
                                answer.language, complete, model, previous)
  if not answers:
    return []
  first = one(answers[0])
  if first.verdict == harm_judge.ERROR:
    raise judge.JudgeError(f"The first request failed after retries: "
                           f"{first.raw}. Is the judge serving?")
  with concurrent.futures.ThreadPoolExecutor(max(1, num_workers)) as pool:
    return [first] + list(pool.map(one, answers[1:]))


def rates(answers: Sequence[Answer],
          judgements: Sequence[harm_judge.Judgement]
          ) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, int]]]:
  """({language: {harmful_rate, refusal_rate}}, {language: counts}).

  Rates are percentages of the judged answers of the language; unparsable
  and failed judgements are counted, not guessed.
  """
  counts = collections.defaultdict(collections.Counter)
  for answer, judgement in zip(answers, judgements):
    counts[answer.language][judgement.verdict] += 1
  results = {}
  for language, c in counts.items():
    judged = sum(c[v] for v in harm_judge.VERDICTS)
    results[language] = {
        "harmful_rate": 100.0 * c[harm_judge.HARMFUL] / judged if judged
                        else None,
        "refusal_rate": 100.0 * c[harm_judge.REFUSAL] / judged if judged
                        else None}
  return results, {k: dict(v) for k, v in counts.items()}


def _write_judgments(output_dir: str, answers, judgements) -> str:
  path = os.path.join(output_dir, JUDGMENTS_FILE)
  with open(path, "w", encoding="utf-8") as f:
    for answer, j in zip(answers, judgements):
      f.write(json.dumps({"id": answer.id, "language": answer.language,
                          **dataclasses.asdict(j)}, ensure_ascii=False)
              + "\n")
  return path


def run(args: argparse.Namespace) -> dict:
  """Reads, judges and writes; returns {results, counts, paths, ...}."""
  answers, skipped = read_answers(args.generations)
  if not answers:
    raise ValueError(f"--generations={args.generations}: no answer to rate "
                     f"(skipped lines: {skipped}).")
  client = generators.EndpointConfig(
      args.judge_url, args.judge_model, args.api_key_env,
      max_retries=args.max_retries, timeout_s=args.timeout_s).client()
  os.makedirs(args.output_dir, exist_ok=True)
  previous = {} if args.fresh else _previous(args.output_dir)
  judgements = judge_answers(answers, client.complete, args.judge_model,
                             args.num_workers, previous)
  results, counts = rates(answers, judgements)
  unjudged = sum(j.verdict not in harm_judge.VERDICTS for j in judgements)
  notes = {"judge": f"{args.judge_model} at {args.judge_url}",
           "generations": args.generations}
  if unjudged:
    notes["unjudged answers"] = f"{unjudged}, see {JUDGMENTS_FILE}"
  paths = eval_report.write_reports({BENCHMARK: results}, args.output_dir,
                                    notes=notes)
  paths["judgments"] = _write_judgments(args.output_dir, answers, judgements)
  details = {"counts": counts, "skipped_lines": skipped,
             "unjudged": unjudged,
             "reused_judgements": sum(j.key in previous for j in judgements)}
  paths["details"] = os.path.join(args.output_dir, "details.json")
  with open(paths["details"], "w", encoding="utf-8") as f:
    json.dump(details, f, indent=2, ensure_ascii=False)
  print(eval_report.markdown_table({BENCHMARK: results}, notes))
  return {"results": results, "paths": paths, **details}


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="python -m aya_t5x.harmfulness",
                                   allow_abbrev=False,
                                   description=__doc__.split("\n\n")[1])
  parser.add_argument("--generations", required=True,
                      help="JSONL of language, inputs, prediction (and id).")
  parser.add_argument("--judge_url", required=True)
  parser.add_argument("--judge_model", required=True)
  parser.add_argument("--output_dir", required=True)
  parser.add_argument("--api_key_env", default=None)
  parser.add_argument("--num_workers", type=int, default=4)
  parser.add_argument("--max_retries", type=int, default=5)
  parser.add_argument("--timeout_s", type=float, default=120.0)
  parser.add_argument("--fresh", action="store_true",
                      help="Ask about every answer again.")
  parser.add_argument(startup.VERBOSE_FLAG, action="store_true",
                      help="Show native libraries' start-up lines.")
  return parser


def main(argv: Sequence[str] | None = None) -> int:
  args = _parser().parse_args(argv)
  startup.end()
  try:
    summary = run(args)
  except (ValueError, OSError, judge.JudgeError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  return 1 if summary["unjudged"] else 0


if __name__ == "__main__":
  sys.exit(main())
