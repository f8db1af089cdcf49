r"""Pairwise win rates of two models' generations, judged by a chat model.

  python -m aya_t5x.judge --a=A.jsonl --b=B.jsonl \
      --judge_url=http://localhost:8000/v1 --judge_model=NAME \
      --output_dir=DIR [--seed=0] [--api_key_env=OPENAI_API_KEY] \
      [--num_workers=4] [--max_retries=5] [--limit=N]

As the Aya paper does (section 5.2), each prompt's two answers are shown to
a judge side by side and it picks the better one or a tie. Judges favour a
position, so which model is shown first is drawn per example, from the seed
and the example id alone: the same run gives the same order, whatever the
order of the files or the number of workers.

Inputs are JSONL lines with at least `id`, `language`, `inputs` and
`prediction` (what `python -m aya_t5x.eval` writes for the open-ended sets).
Examples are paired by `id`. Nothing is dropped silently: a bad line
(invalid JSON, a missing or non-string field, a repeated id), an id in one
file only, a pair whose `inputs` differ, an answer the judge gave no
readable verdict in, and a request that still failed after retries are all
counted in the summary and named in `problems`.

The judge is any OpenAI-compatible `/chat/completions` endpoint (vLLM, TGI,
llama.cpp's server, OpenAI itself), called with the standard library only.

Writes DIR/judgments.jsonl (one line per pair: order shown, raw reply,
verdict), DIR/summary.json and DIR/summary.csv (win/tie/loss of A against
B per language and overall). Judgments are saved as they come in; running
the same command again (after an interruption, or with a few answers
changed) reuses every `ok` judgment whose request is unchanged and asks
only about the rest (`--fresh` asks about everything). Exit status: 0, 1 if any pair ended unjudged
(unparsable or failed), 2 on a usage error (bad file, unreachable or
refusing endpoint).
"""

import argparse
import concurrent.futures
import csv
import dataclasses
import functools
import hashlib
import json
import os
import re
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence

REQUIRED_FIELDS = ("id", "language", "inputs", "prediction")
# HTTP statuses worth retrying: timeouts, rate limits, server trouble.
_TRANSIENT_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
# How many characters of a failing reply an error message quotes.
_QUOTE_CHARS = 300

SYSTEM_PROMPT = (
    "You are an impartial judge of the answers of AI assistants. You compare "
    "two answers to the same request and decide which one is better.")

USER_TEMPLATE = """\
Compare the two responses to the user's request below. The request is in \
{language}; a good response answers it helpfully, correctly and completely, \
in the language the user expects. Do not let the order of the responses, \
their length or the names of the assistants influence you.

[Request]
{inputs}
[End of Request]

[Response 1]
{first}
[End of Response 1]

[Response 2]
{second}
[End of Response 2]

Explain your reasoning briefly, then give your verdict on the last line, \
exactly one of: [[1]] if Response 1 is better, [[2]] if Response 2 is \
better, [[TIE]] if they are equally good."""


class JudgeError(Exception):
  """The endpoint refused a request in a way retrying cannot fix."""


class TransientJudgeError(Exception):
  """A request failed in a way that may pass on retry."""


@dataclasses.dataclass(frozen=True)
class Generation:
  """One model's answer to one prompt."""

  id: str
  language: str
  inputs: str
  prediction: str


@dataclasses.dataclass(frozen=True)
class Pair:
  """The two models' answers to the same prompt."""

  a: Generation
  b: Generation


@dataclasses.dataclass
class Judgment:
  """What the judge said about one pair, in A/B terms."""

  id: str
  language: str
  a_shown_first: bool
  # "a", "b" or "tie"; None when the pair is unjudged (see `status`).
  winner: str | None
  # "ok", "unparsable" (no verdict found in the reply) or "error".
  status: str
  # The judge's reply, or the error that stopped it.
  raw: str
  # Fingerprint of the request (see `request_key`): a re-run reuses an `ok`
  # judgment with the same key instead of asking again.
  key: str = ""


# ----------------------------------------------------------------------------
# Reading and pairing generations.


def _parse_line(line: str) -> Generation:
  """A JSONL line as a Generation; ValueError says what is wrong."""
  try:
    record = json.loads(line)
  except json.JSONDecodeError as e:
    raise ValueError(f"invalid JSON ({e.msg})") from None
  if not isinstance(record, dict):
    raise ValueError(f"expected a JSON object, got {type(record).__name__}")
  missing = [f for f in REQUIRED_FIELDS if f not in record]
  if missing:
    raise ValueError(f"missing field(s) {missing}")
  if not isinstance(record["id"], (str, int)) or isinstance(record["id"],
                                                            bool):
    raise ValueError("field 'id' must be a string or an integer")
  for field in REQUIRED_FIELDS[1:]:
    if not isinstance(record[field], str):
      raise ValueError(f"field {field!r} must be a string, got "
                       f"{type(record[field]).__name__}")
  return Generation(str(record["id"]), record["language"], record["inputs"],
                    record["prediction"])


def read_generations(path: str) -> tuple[dict[str, Generation], list[str]]:
  """A generations file by id, and one `path:line: reason` per bad line.

  Raises:
    FileNotFoundError: `path` does not exist.
  """
  generations, problems = {}, []
  # utf-8-sig: a byte-order mark (Windows editors) is not a JSON error.
  with open(path, encoding="utf-8-sig") as f:
    for number, line in enumerate(f, start=1):
      if not line.strip():
        continue
      try:
        generation = _parse_line(line)
      except ValueError as e:
        problems.append(f"{path}:{number}: {e}; line skipped")
        continue
      if generation.id in generations:
        problems.append(f"{path}:{number}: id {generation.id!r} repeated; "
                        "the first one is kept")
        continue
      generations[generation.id] = generation
  return generations, problems


def pair_generations(a: Mapping[str, Generation], b: Mapping[str, Generation],
                     a_name: str = "A", b_name: str = "B"
                     ) -> tuple[list[Pair], list[str]]:
  """Pairs by id, in A's order; unpairable ids are returned as problems."""
  pairs, problems = [], []
  for example_id, gen_a in a.items():
    gen_b = b.get(example_id)
    if gen_b is None:
      problems.append(f"id {example_id!r} is in {a_name} but not {b_name}")
    elif gen_a.inputs != gen_b.inputs:
      problems.append(f"id {example_id!r}: 'inputs' differ between "
                      f"{a_name} and {b_name}; not judged")
    elif gen_a.language != gen_b.language:
      problems.append(f"id {example_id!r}: 'language' is "
                      f"{gen_a.language!r} in {a_name} but "
                      f"{gen_b.language!r} in {b_name}; not judged")
    else:
      pairs.append(Pair(gen_a, gen_b))
  problems.extend(f"id {i!r} is in {b_name} but not {a_name}"
                  for i in b if i not in a)
  return pairs, problems


# ----------------------------------------------------------------------------
# The prompt, the order shown and the verdict.


def a_shown_first(seed: int, example_id: str) -> bool:
  """Whether model A's answer is Response 1, from the seed and id only."""
  digest = hashlib.sha256(f"{seed}\x00{example_id}".encode()).digest()
  return digest[0] & 1 == 0


def judge_messages(pair: Pair, a_first: bool) -> list[dict[str, str]]:
  """The chat messages asking the judge about one pair, in a given order."""
  first, second = (pair.a, pair.b) if a_first else (pair.b, pair.a)
  user = USER_TEMPLATE.format(language=pair.a.language,
                              inputs=pair.a.inputs,
                              first=first.prediction,
                              second=second.prediction)
  return [{"role": "system", "content": SYSTEM_PROMPT},
          {"role": "user", "content": user}]


_BRACKETED = re.compile(r"\[\[\s*(1|2|tie)\s*\]\]", re.IGNORECASE)
_BARE = re.compile(
    r"\W*(?:(?:final\s+)?verdict\s*[:\-]\s*)?(?:response\s*|assistant\s*)?"
    r"(1|2|tie)\W*", re.IGNORECASE)


def parse_verdict(reply: str) -> str | None:
  """"1", "2" or "tie" from a judge's reply; None if it holds no clear one.

  The asked-for `[[1]]`/`[[2]]`/`[[TIE]]` counts wherever it is, as long
  as the reply names only one; several different ones are ambiguous. A
  reply that is only a verdict ("2", "Response 1", "Verdict: tie") counts
  too. Anything else is unparsable: guessing would bias the win rate.
  """
  found = {m.lower() for m in _BRACKETED.findall(reply)}
  if len(found) == 1:
    return found.pop()
  if found:
    return None
  lines = [line.strip() for line in reply.strip().splitlines()
           if line.strip()]
  if lines:
    match = _BARE.fullmatch(lines[-1])
    if match:
      return match.group(1).lower()
  return None


def to_winner(verdict: str, a_first: bool) -> str:
  """A position verdict in model terms: "a", "b" or "tie"."""
  if verdict == "tie":
    return "tie"
  return "a" if (verdict == "1") == a_first else "b"


# ----------------------------------------------------------------------------
# The endpoint.


@dataclasses.dataclass(frozen=True)
class JudgeClient:
  """An OpenAI-compatible chat endpoint, retried on transient failures."""

  # Base URL ending in /v1 (or wherever /chat/completions lives).
  url: str
  model: str
  api_key: str | None = None
  timeout_s: float = 120.0
  max_retries: int = 5
  # First back-off; doubles each retry (capped at 60 s).
  backoff_s: float = 2.0
  temperature: float = 0.0
  max_tokens: int = 1024
  # Nucleus sampling; None leaves it to the server (the judge samples
  # greedily; a teacher endpoint uses the paper's 0.8).
  top_p: float | None = None

  @property
  def endpoint(self) -> str:
    return self.url.rstrip("/") + "/chat/completions"

  def _request(self, messages: Sequence[Mapping[str, str]]
               ) -> urllib.request.Request:
    fields = {"model": self.model, "messages": list(messages),
              "temperature": self.temperature, "max_tokens": self.max_tokens}
    if self.top_p is not None:
      fields["top_p"] = self.top_p
    body = json.dumps(fields).encode("utf-8")
    headers = {"Content-Type": "application/json"}
    if self.api_key:
      headers["Authorization"] = f"Bearer {self.api_key}"
    return urllib.request.Request(self.endpoint, data=body, headers=headers,
                                  method="POST")

  def _post_once(self, messages: Sequence[Mapping[str, str]]) -> str:
    """One request; sorts failures into transient and permanent ones."""
    try:
      with urllib.request.urlopen(self._request(messages),
                                  timeout=self.timeout_s) as response:
        payload = response.read()
    except urllib.error.HTTPError as e:
      detail = e.read()[:_QUOTE_CHARS].decode("utf-8", "replace")
      message = f"{self.endpoint} answered HTTP {e.code}: {detail}"
      if e.code in _TRANSIENT_STATUSES:
        raise TransientJudgeError(message) from None
      raise JudgeError(message + " (check --judge_url, --judge_model and "
                       "the API key)") from None
    except (urllib.error.URLError, socket.timeout, ConnectionError) as e:
      reason = getattr(e, "reason", e)
      raise TransientJudgeError(f"{self.endpoint}: {reason}") from None
    return _reply_text(payload, self.endpoint)

  def complete(self, messages: Sequence[Mapping[str, str]]) -> str:
    """The reply's text.

    Raises:
      JudgeError: a permanent refusal (bad URL, model or key).
      TransientJudgeError: still failing after `max_retries` retries.
    """
    delay = self.backoff_s
    for attempt in range(self.max_retries + 1):
      try:
        return self._post_once(messages)
      except TransientJudgeError:
        if attempt == self.max_retries:
          raise
        time.sleep(delay)
        delay = min(2 * delay, 60.0)
    raise AssertionError("unreachable")


def _reply_text(payload: bytes, endpoint: str) -> str:
  """choices[0].message.content of a chat completion.

  A malformed body is treated as transient: overloaded servers and proxies
  return HTML error pages with status 200.
  """
  try:
    content = json.loads(payload)["choices"][0]["message"]["content"]
  except (ValueError, KeyError, IndexError, TypeError):
    quoted = payload[:_QUOTE_CHARS].decode("utf-8", "replace")
    raise TransientJudgeError(
        f"{endpoint} sent no chat completion: {quoted!r}") from None
  if not isinstance(content, str):
    raise TransientJudgeError(f"{endpoint} sent non-text content: "
                              f"{str(content)[:_QUOTE_CHARS]!r}")
  return content


# ----------------------------------------------------------------------------
# Judging and counting.


def request_key(model: str, example_id: str, a_first: bool,
                messages: Sequence[Mapping[str, str]]) -> str:
  """What a verdict depends on: judge, example, order, and the full prompt
  (request, both answers, template). Any change means asking again."""
  text = json.dumps([model, example_id, a_first, list(messages)],
                    ensure_ascii=False)
  return hashlib.sha256(text.encode("utf-8")).hexdigest()


def judge_pair(pair: Pair, complete: Callable[[list], str], seed: int, *,
               model: str = "",
               previous: Mapping[str, Judgment] | None = None) -> Judgment:
  """One pair's judgment; transient failures become an `error` judgment.

  `previous` maps request keys to earlier `ok` judgments, reused as they
  are; unparsable and failed ones are asked again.
  """
  a_first = a_shown_first(seed, pair.a.id)
  messages = judge_messages(pair, a_first)
  key = request_key(model, pair.a.id, a_first, messages)
  if previous and key in previous:
    return previous[key]
  make = functools.partial(Judgment, pair.a.id, pair.a.language, a_first,
                           key=key)
  try:
    reply = complete(messages)
  except TransientJudgeError as e:
    return make(None, "error", str(e))
  verdict = parse_verdict(reply)
  if verdict is None:
    return make(None, "unparsable", reply)
  return make(to_winner(verdict, a_first), "ok", reply)


def judge_pairs(pairs: Sequence[Pair], complete: Callable[[list], str],
                seed: int, num_workers: int = 1, *, model: str = "",
                previous: Mapping[str, Judgment] | None = None,
                on_judged: Callable[[Judgment], None] | None = None
                ) -> list[Judgment]:
  """All pairs' judgments, in the pairs' order.

  The first pair is judged alone: if the endpoint cannot answer it even
  after retries (a wrong URL, a server not started), every other pair would
  wait through the same retries, so the run stops instead.

  Args:
    pairs, complete, seed, model, previous: see `judge_pair`.
    num_workers: requests in flight at once.
    on_judged: called with each judgment as it is made (from worker
      threads), e.g. to save progress.

  Raises:
    JudgeError: the endpoint refused a request permanently, or failed the
      first one; the remaining requests are cancelled.
  """
  def one(pair: Pair) -> Judgment:
    judgment = judge_pair(pair, complete, seed, model=model,
                          previous=previous)
    if on_judged is not None:
      on_judged(judgment)
    return judgment

  if not pairs:
    return []
  first = one(pairs[0])
  if first.status == "error":
    raise JudgeError(f"The first request failed after retries: {first.raw}. "
                     "Is the judge serving at --judge_url?")
  with concurrent.futures.ThreadPoolExecutor(max(1, num_workers)) as pool:
    futures = [pool.submit(one, p) for p in pairs[1:]]
    try:
      return [first] + [f.result() for f in futures]
    except JudgeError:
      for future in futures:
        future.cancel()
      raise


_COUNT_KEYS = ("pairs", "a_wins", "ties", "b_wins", "unparsable", "errors")


def _rates(counts: dict[str, int]) -> dict[str, float | None]:
  """Percentages over the judged pairs (unjudged ones are counted apart)."""
  judged = counts["a_wins"] + counts["ties"] + counts["b_wins"]
  if not judged:
    return {"a_win_rate": None, "tie_rate": None, "b_win_rate": None}
  return {"a_win_rate": 100.0 * counts["a_wins"] / judged,
          "tie_rate": 100.0 * counts["ties"] / judged,
          "b_win_rate": 100.0 * counts["b_wins"] / judged}


def summarize(judgments: Iterable[Judgment]) -> dict[str, dict]:
  """Win/tie/loss of A against B per language, and "overall" last."""
  counts: dict[str, dict[str, int]] = {}
  for j in judgments:
    for key in (j.language, "overall"):
      row = counts.setdefault(key, dict.fromkeys(_COUNT_KEYS, 0))
      row["pairs"] += 1
      if j.status == "ok":
        row[{"a": "a_wins", "b": "b_wins", "tie": "ties"}[j.winner]] += 1
      else:
        row["unparsable" if j.status == "unparsable" else "errors"] += 1
  languages = sorted(k for k in counts if k != "overall")
  order = languages + (["overall"] if "overall" in counts else [])
  return {k: {**counts[k], **_rates(counts[k])} for k in order}


# ----------------------------------------------------------------------------
# Outputs, progress and the command line.

JUDGMENTS_FILE = "judgments.jsonl"
# Judgments appended as they are made, so an interrupted run loses none.
PROGRESS_FILE = "judgments.partial.jsonl"


def load_previous_judgments(output_dir: str) -> dict[str, Judgment]:
  """`ok` judgments of an earlier (maybe interrupted) run, by request key.

  Lines that do not read back (the last line of a killed run, files of an
  older version without keys) are ignored: those pairs are simply asked
  again.
  """
  previous = {}
  for name in (JUDGMENTS_FILE, PROGRESS_FILE):
    path = os.path.join(output_dir, name)
    if not os.path.exists(path):
      continue
    with open(path, encoding="utf-8") as f:
      for line in f:
        try:
          judgment = Judgment(**json.loads(line))
        except (ValueError, TypeError):
          continue
        if judgment.status == "ok" and judgment.key:
          previous[judgment.key] = judgment
  return previous


class _ProgressWriter:
  """Appends judgments to a JSONL file from several threads."""

  def __init__(self, path: str):
    # Kept open for the whole run; `close` is called in a finally block.
    self._file = open(path, "a", encoding="utf-8")  # pylint: disable=R1732
    self._lock = threading.Lock()

  def __call__(self, judgment: Judgment) -> None:
    line = json.dumps(dataclasses.asdict(judgment), ensure_ascii=False)
    with self._lock:
      self._file.write(line + "\n")
      self._file.flush()

  def close(self) -> None:
    self._file.close()


def write_outputs(output_dir: str, judgments: Sequence[Judgment],
                  summary: Mapping[str, Mapping], meta: Mapping
                  ) -> dict[str, str]:
  """judgments.jsonl, summary.json and summary.csv; returns their paths."""
  os.makedirs(output_dir, exist_ok=True)
  paths = {name: os.path.join(output_dir, name) for name in
           (JUDGMENTS_FILE, "summary.json", "summary.csv")}
  with open(paths[JUDGMENTS_FILE], "w", encoding="utf-8") as f:
    for j in judgments:
      f.write(json.dumps(dataclasses.asdict(j), ensure_ascii=False) + "\n")
  with open(paths["summary.json"], "w", encoding="utf-8") as f:
    json.dump({**meta, "per_language": summary}, f, indent=2,
              ensure_ascii=False)
  columns = ["language", *_COUNT_KEYS, "a_win_rate", "tie_rate",
             "b_win_rate"]
  with open(paths["summary.csv"], "w", encoding="utf-8", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=columns)
    writer.writeheader()
    for language, row in summary.items():
      writer.writerow({"language": language, **row})
  return paths


def format_summary(summary: Mapping[str, Mapping], a_name: str,
                   b_name: str) -> str:
  """A Markdown table of the summary, for the terminal."""
  lines = [f"| language | pairs | {a_name} wins % | tie % | {b_name} wins % "
           "| unparsable | errors |", "| --- | ---: | ---: | ---: | ---: | "
           "---: | ---: |"]
  for language, row in summary.items():
    rates = [("-" if row[k] is None else f"{row[k]:.1f}")
             for k in ("a_win_rate", "tie_rate", "b_win_rate")]
    lines.append(f"| {language} | {row['pairs']} | {' | '.join(rates)} | "
                 f"{row['unparsable']} | {row['errors']} |")
  return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="python -m aya_t5x.judge",
                                   allow_abbrev=False,
                                   description=__doc__.split("\n\n")[1])
  parser.add_argument("--a", required=True, help="Model A's generations.")
  parser.add_argument("--b", required=True, help="Model B's generations.")
  parser.add_argument("--judge_url", required=True,
                      help="Base URL of the chat API, e.g. "
                      "http://localhost:8000/v1.")
  parser.add_argument("--judge_model", required=True)
  parser.add_argument("--output_dir", required=True)
  parser.add_argument("--seed", type=int, default=0,
                      help="Draws which model is shown first per example.")
  parser.add_argument("--api_key_env", default=None,
                      help="Name of the environment variable holding the "
                      "API key (the key itself never goes on the command "
                      "line).")
  parser.add_argument("--num_workers", type=int, default=4)
  parser.add_argument("--max_retries", type=int, default=5)
  parser.add_argument("--retry_backoff_s", type=float, default=2.0)
  parser.add_argument("--timeout_s", type=float, default=120.0)
  parser.add_argument("--max_tokens", type=int, default=1024)
  parser.add_argument("--limit", type=int, default=None,
                      help="Judge only the first N pairs (a dry run).")
  parser.add_argument("--fresh", action="store_true",
                      help="Ask the judge about every pair again, instead "
                      "of reusing the ok judgments already in --output_dir "
                      "for unchanged requests.")
  return parser


def _api_key(env_name: str | None) -> str | None:
  if env_name is None:
    return None
  key = os.environ.get(env_name)
  if not key:
    raise ValueError(f"--api_key_env={env_name}: that environment variable "
                     "is not set or empty.")
  return key


def run(args: argparse.Namespace) -> tuple[dict, list[str]]:
  """Reads, pairs, judges and writes; returns the summary and problems."""
  gens_a, problems_a = read_generations(args.a)
  gens_b, problems_b = read_generations(args.b)
  pairs, problems_pair = pair_generations(gens_a, gens_b, args.a, args.b)
  if args.limit is not None:
    pairs = pairs[:args.limit]
  if not pairs:
    raise ValueError(f"No pair to judge: {args.a} and {args.b} share no "
                     "valid example id.")
  client = JudgeClient(args.judge_url, args.judge_model,
                       _api_key(args.api_key_env), args.timeout_s,
                       args.max_retries, args.retry_backoff_s,
                       max_tokens=args.max_tokens)
  previous = ({} if args.fresh
              else load_previous_judgments(args.output_dir))
  os.makedirs(args.output_dir, exist_ok=True)
  progress = _ProgressWriter(os.path.join(args.output_dir, PROGRESS_FILE))
  try:
    judgments = judge_pairs(pairs, client.complete, args.seed,
                            args.num_workers, model=args.judge_model,
                            previous=previous, on_judged=progress)
  finally:
    progress.close()
  summary = summarize(judgments)
  problems = problems_a + problems_b + problems_pair
  meta = {"a": args.a, "b": args.b, "judge_url": args.judge_url,
          "judge_model": args.judge_model, "seed": args.seed,
          "reused_judgments": sum(previous.get(j.key) is j
                                  for j in judgments),
          "skipped_lines": {args.a: len(problems_a), args.b: len(problems_b)},
          "unpaired_or_mismatched": len(problems_pair),
          "problems": problems}
  paths = write_outputs(args.output_dir, judgments, summary, meta)
  os.remove(os.path.join(args.output_dir, PROGRESS_FILE))
  print(format_summary(summary, "A", "B"))
  print(f"A = {args.a}\nB = {args.b}\nwrote {', '.join(paths.values())}")
  return summary, problems


def main(argv: Sequence[str] | None = None) -> int:
  """Runs the command line; returns the exit status (see module doc)."""
  args = _parser().parse_args(argv)
  try:
    summary, problems = run(args)
  except (ValueError, OSError, JudgeError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  for problem in problems:
    print(f"warning: {problem}", file=sys.stderr)
  overall = summary["overall"]
  unjudged = overall["unparsable"] + overall["errors"]
  if unjudged:
    print(f"warning: {unjudged} of {overall['pairs']} pairs unjudged "
          f"({overall['unparsable']} unparsable, {overall['errors']} failed "
          "requests); see judgments.jsonl", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
