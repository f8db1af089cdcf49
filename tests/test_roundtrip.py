"""The round-trip filter drops exactly the rows whose back-translation
drifts, on a user's dataset and on the translated Aya sample."""

import collections
import json
import os

import pytest

from aya_t5x import generators
from aya_t5x import gin_utils
from aya_t5x import roundtrip
from aya_t5x import sources
from aya_t5x import vocabularies
from aya_t5x.tasks import registry_helpers
from aya_t5x.tasks.eval import prompts
from tests import chat_server

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# (language, translated inputs, English original, what the fake translator
# gives back). Rows marked True drift: the back-translation lost the sense.
ROWS = [
    ("swa", "Mto ni mrefu.", "The river is long.", "The river is long.",
     False),
    ("swa", "Ninapenda kusoma vitabu.", "I like to read books.",
     "I like reading books.", False),
    ("swa", "Soko hufunguliwa mapema.", "The market opens early.",
     "My uncle sold two goats.", True),
    ("hin", "नदी लंबी है।", "The river is long.",
     "The river is very long.", False),
    ("hin", "बच्चे पार्क में खेलते हैं।", "Children play in the park.",
     "Rain is expected tomorrow.", True),
    ("hin", "हम सुबह चाय पीते हैं।", "We drink tea in the morning.",
     "We drink tea in the morning.", False),
    ("yor", "Odò náà gùn.", "The river is long.", "The.", True),
]


def _back_translate(messages):
  """The fake translator: a fixed back-translation per sentence."""
  request = chat_server.last_user_message(messages)
  for _, translated, _, back, _ in ROWS:
    if request == prompts.TRANSLATE.format(target_language="English",
                                           sentence=translated):
      return back
  return "unknown"


@pytest.fixture(name="user_task")
def fixture_user_task(tmp_path):
  path = tmp_path / "train.jsonl"
  lines = [json.dumps({"inputs": t, "targets": f"target {i}", "language": l,
                       "english_inputs": o}, ensure_ascii=False)
           for i, (l, t, o, _, _) in enumerate(ROWS)]
  lines.append(json.dumps({"inputs": "Bila asili.", "targets": "x",
                           "language": "swa"}))  # No original: counted.
  path.write_text("\n".join(lines) + "\n", encoding="utf-8")
  name = f"test_roundtrip_user_{abs(hash(str(tmp_path)))}"
  registry_helpers.register_dataset(
      name, files={"train": str(path)},
      vocabulary=vocabularies.demo_vocabulary())
  return name


def _argv(task, output_dir, url, *extra):
  return [f"--gin_file={REPO}/gin/models/mt5_tiny.gin",
          f"--gin_file={REPO}/gin/runs/roundtrip.gin",
          f"--gin.ROUND_TRIP_TASK='{task}'",
          f"--gin.ROUND_TRIP_OUTPUT_DIR='{output_dir}'",
          "--gin.ORIGINAL_COLUMNS={'inputs': 'english_inputs'}",
          f"--gin.TRANSLATOR_URL='{url}'", "--gin.TRANSLATOR_MODEL='fake'",
          "--gin.BATCH_SIZE=3", *extra]


def test_the_filter_drops_exactly_the_planted_drifting_rows(user_task,
                                                            tmp_path):
  out = tmp_path / "rt"
  with chat_server.serve(_back_translate) as server:
    summary = roundtrip.main(gin_utils.parse_command_line(
        _argv(user_task, out, server.url)))
  drifting = {r[1] for r in ROWS if r[4]}
  scores = [json.loads(l) for l in open(out / "scores.jsonl",
                                        encoding="utf-8")]
  assert len(scores) == len(ROWS)
  assert summary["skipped_rows"] == {"no original or no text": 1}
  assert summary["by_language"] == {"hin": {"kept": 2, "round_trip_drift": 1},
                                    "swa": {"kept": 2, "round_trip_drift": 1},
                                    "yor": {"round_trip_drift": 1}}
  filtered = roundtrip.register_filtered(user_task,
                                         str(out / "scores.jsonl"))
  report = sources.count_task(filtered)
  assert report.by_reason() == {"round_trip_drift:inputs": 3}
  kept = {r["inputs_pretokenized"].decode() for r in filtered.get_dataset(
      None, split="train", shuffle=False).as_numpy_iterator()}
  assert kept == {r[1] for r in ROWS} - drifting | {"Bila asili."}


def test_a_cut_run_resumes_without_translating_again(user_task, tmp_path):
  out = tmp_path / "resumed"
  config = roundtrip.RoundTripConfig(
      user_task, str(out), original_columns={"inputs": "english_inputs"},
      batch_size=3)
  with chat_server.serve(_back_translate) as server:
    translator = generators.EndpointConfig(server.url, "fake").generator()
    roundtrip.score_rows(config, translator)
    full = (out / "scores.jsonl").read_text(encoding="utf-8").splitlines()
    (out / "scores.jsonl").write_text("\n".join(full[:4]) + "\n",
                                      encoding="utf-8")
    before = len(server.requests)
    summary = roundtrip.score_rows(config, translator)
    assert len(server.requests) - before == len(ROWS) - 4
  assert summary["resumed_at"] == 4
  assert (out / "scores.jsonl").read_text(
      encoding="utf-8").splitlines() == full


def test_originals_can_come_from_another_task_by_a_shared_key(tmp_path):
  files = {}
  for code, texts in (("eng", ["The river is long.", "I like tea."]),
                      ("swa", ["Mto ni mrefu.", "Ninapenda chai."])):
    path = tmp_path / f"{code}.jsonl"
    path.write_text("".join(json.dumps(
        {"inputs": t, "targets": "t", "language": code, "pair_id": f"p{i}"},
        ensure_ascii=False) + "\n" for i, t in enumerate(reversed(texts)
                                                       if code == "swa"
                                                       else texts)),
                    encoding="utf-8")
    files[code] = registry_helpers.register_dataset(
        f"test_roundtrip_pair_{code}_{abs(hash(str(tmp_path)))}",
        files={"train": str(path)},
        vocabulary=vocabularies.demo_vocabulary()).name
  config = roundtrip.RoundTripConfig(files["swa"], str(tmp_path / "out"),
                                     pair_task=files["eng"],
                                     pair_key="pair_id")
  rows, skipped = roundtrip.rows_with_originals(config)
  assert not skipped
  # Written in reverse order, paired by key: "Ninapenda chai." is p0.
  assert {(r["inputs"], r["original_inputs"]) for r in rows} == {
      ("Ninapenda chai.", "The river is long."),
      ("Mto ni mrefu.", "I like tea.")}


def test_the_filter_applies_to_a_translated_aya_task(sample_mirror, tmp_path):
  del sample_mirror
  task = "aya_sample_translated_dolly_swa"
  spec = roundtrip._spec(task, "aya_t5x.mixtures")  # pylint: disable=protected-access
  rows = roundtrip.raw_rows(spec, "train", {}, collections.Counter())
  scores = tmp_path / "scores.jsonl"
  scores.write_text("".join(json.dumps({
      "inputs": roundtrip.row_key(r["language"], r["inputs"], r["targets"]),
      "score": 10.0 if i == 0 else 90.0}) + "\n" for i, r in enumerate(rows)))
  filtered = roundtrip.register_filtered(task, str(scores), threshold=50.0,
                                         name=f"{task}_rt_test")
  report = sources.count_task(filtered)
  assert report.by_reason() == {"round_trip_drift:inputs": 1}
  assert report.kept == len(rows) - 1


def test_the_originals_must_be_named_one_way():
  with pytest.raises(ValueError, match="exactly one"):
    roundtrip.RoundTripConfig("t", "/tmp/x")
  with pytest.raises(ValueError, match="PAIR_KEY"):
    roundtrip.RoundTripConfig("t", "/tmp/x", pair_task="u")
