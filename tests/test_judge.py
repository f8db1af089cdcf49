"""The pairwise judge harness against a fake judge served on 127.0.0.1."""

import http.server
import json
import re
import subprocess
import sys
import threading

import pytest

from aya_t5x import judge
from tests import chat_server

_RESPONSE = re.compile(
    r"\[Response (\d)\]\n(.*?)\n\[End of Response \1\]", re.DOTALL)


def _prefer_longer(first: str, second: str) -> str:
  """A deterministic judge: the longer answer wins, equal lengths tie."""
  if "GARBLE" in first + second:
    return "Both answers have merits and I cannot choose."
  if len(first) == len(second):
    return "They are equally good.\n[[TIE]]"
  return ("Response 1 is more detailed.\n[[1]]" if len(first) > len(second)
          else "Response 2 is more detailed.\n[[2]]")


def _always_first(first: str, second: str) -> str:
  del first, second  # A judge with pure position bias.
  return "[[1]]"


class _FakeJudgeHandler(chat_server.Handler):
  """Answers /v1/chat/completions in the OpenAI chat format."""

  def do_POST(self):  # pylint: disable=invalid-name
    server = self.server
    body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
    with server.lock:
      server.requests.append({"path": self.path, "body": body,
                              "auth": self.headers.get("Authorization")})
    if self.path != "/v1/chat/completions":
      return self._send(404, {"error": {"message": "no such route"}})
    if server.api_key and (self.headers.get("Authorization")
                           != f"Bearer {server.api_key}"):
      return self._send(401, {"error": {"message": "invalid api key"}})
    responses = dict(_RESPONSE.findall(body["messages"][-1]["content"]))
    first, second = responses["1"], responses["2"]
    if "DOWN" in first + second:
      return self._send(503, {"error": {"message": "overloaded"}})
    if "FLAKY" in first + second:
      with server.lock:
        failed_before = server.flaky_failed
        server.flaky_failed = True
      if not failed_before:
        return self._send(503, {"error": {"message": "try again"}})
    return self.reply(body, server.policy(first, second))


@pytest.fixture(name="server")
def fixture_server():
  server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                           _FakeJudgeHandler)
  server.lock = threading.Lock()
  server.requests, server.flaky_failed = [], False
  server.policy, server.api_key = _prefer_longer, None
  server.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
  thread = threading.Thread(target=server.serve_forever, args=(0.05,),
                            daemon=True)
  thread.start()
  yield server
  server.shutdown()
  server.server_close()


# Answers of two models: per example, A's and B's prediction lengths differ
# both ways and tie, across three languages.
EXAMPLES = [
    ("1", "hin", "A detailed answer", "short"),
    ("2", "hin", "no", "B gives much more"),
    ("3", "hin", "same", "size"),
    ("4", "swa", "Jibu refu zaidi hapa", "fupi"),
    ("5", "swa", "x", "Jibu la B ni refu"),
    ("6", "swa", "long answer from A", "short from B"),
    ("7", "zho", "很长的回答很长", "短"),
    ("8", "zho", "短", "B的回答比较长"),
    ("9", "zho", "一样", "相同"),
    ("10", "eng", "A wins this one clearly", "B"),
    ("11", "eng", "A", "B wins this one clearly"),
    ("12", "eng", "tie!", "tie?"),
]


def _write(path, rows):
  path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n"
                          for r in rows), encoding="utf-8")
  return str(path)


def _files(tmp_path, examples=EXAMPLES):
  a = [{"id": i, "language": l, "inputs": f"prompt {i}", "prediction": pa}
       for i, l, pa, _ in examples]
  b = [{"id": i, "language": l, "inputs": f"prompt {i}", "prediction": pb}
       for i, l, _, pb in examples]
  return _write(tmp_path / "a.jsonl", a), _write(tmp_path / "b.jsonl", b)


def _args(server, a, b, out, *extra):
  return [f"--a={a}", f"--b={b}", f"--judge_url={server.url}",
          "--judge_model=fake-judge", f"--output_dir={out}",
          "--retry_backoff_s=0", "--num_workers=3", *extra]


def _expected_winner(pa, pb):
  return "tie" if len(pa) == len(pb) else ("a" if len(pa) > len(pb) else "b")


def test_longer_answer_wins_whatever_order_it_was_shown_in(server, tmp_path):
  a, b = _files(tmp_path)
  out = tmp_path / "out"
  result = subprocess.run(
      [sys.executable, "-m", "aya_t5x.judge", *_args(server, a, b, out)],
      capture_output=True, text=True, timeout=60, check=False)
  assert result.returncode == 0, result.stderr
  judgments = [json.loads(l) for l in
               (out / "judgments.jsonl").read_text().splitlines()]
  assert {j["a_shown_first"] for j in judgments} == {True, False}
  by_id = {j["id"]: j for j in judgments}
  for example_id, _, pa, pb in EXAMPLES:
    assert by_id[example_id]["winner"] == _expected_winner(pa, pb)
  summary = json.loads((out / "summary.json").read_text())["per_language"]
  assert list(summary) == ["eng", "hin", "swa", "zho", "overall"]
  assert summary["hin"]["a_wins"] == 1 and summary["hin"]["b_wins"] == 1
  assert summary["overall"]["pairs"] == 12
  assert summary["overall"]["a_wins"] == 5
  assert summary["overall"]["b_wins"] == 4
  assert summary["overall"]["ties"] == 3
  assert summary["overall"]["a_win_rate"] == pytest.approx(100 * 5 / 12)
  csv_lines = (out / "summary.csv").read_text().splitlines()
  assert csv_lines[0].startswith("language,pairs,a_wins,ties,b_wins")
  assert csv_lines[-1].startswith("overall,12,5,3,4,0,0,")
  assert "| overall | 12 | 41.7 | 25.0 | 33.3 | 0 | 0 |" in result.stdout
  # Every request was a chat completion for the named model.
  assert len(server.requests) == 12
  assert all(r["path"] == "/v1/chat/completions"
             and r["body"]["model"] == "fake-judge"
             and [m["role"] for m in r["body"]["messages"]] == [
                 "system", "user"] for r in server.requests)


def test_rerun_reuses_unchanged_judgments_and_resumes_interrupted_runs(
    server, tmp_path):
  a, b = _files(tmp_path)
  out = tmp_path / "out"
  assert judge.main(_args(server, a, b, out)) == 0
  first = (out / "judgments.jsonl").read_text().splitlines()
  assert len(server.requests) == 12
  assert not (out / judge.PROGRESS_FILE).exists()

  assert judge.main(_args(server, a, b, out)) == 0  # Nothing changed.
  assert len(server.requests) == 12
  assert json.loads((out / "summary.json").read_text())[
      "reused_judgments"] == 12
  assert (out / "judgments.jsonl").read_text().splitlines() == first

  rows = [json.loads(l) for l in open(b, encoding="utf-8")]
  rows[0]["prediction"] = "a different, much longer answer from B"
  _write(tmp_path / "b.jsonl", rows)
  assert judge.main(_args(server, a, b, out)) == 0
  assert len(server.requests) == 13  # Only the changed pair.
  by_id = {j["id"]: j for j in map(json.loads, (
      out / "judgments.jsonl").read_text().splitlines())}
  assert by_id["1"]["winner"] == "b"

  # An interrupted run: two judgments saved, the last line cut short.
  (out / "judgments.jsonl").unlink()
  (out / judge.PROGRESS_FILE).write_text(
      "\n".join(first[1:3]) + "\n" + first[3][:20], encoding="utf-8")
  assert judge.main(_args(server, a, b, out)) == 0
  assert len(server.requests) == 13 + 10

  assert judge.main(_args(server, a, b, out, "--fresh")) == 0
  assert len(server.requests) == 23 + 12


def test_random_order_undoes_a_judge_that_always_picks_the_first(
    server, tmp_path):
  server.policy = _always_first
  examples = [(str(i), "eng", f"a{i}", f"b{i}") for i in range(40)]
  a, b = _files(tmp_path, examples)
  assert judge.main(_args(server, a, b, tmp_path / "out")) == 0
  summary = json.loads(
      (tmp_path / "out" / "summary.json").read_text())["per_language"]
  shown_first = sum(judge.a_shown_first(0, e[0]) for e in examples)
  assert summary["overall"]["a_wins"] == shown_first
  assert summary["overall"]["b_wins"] == 40 - shown_first
  assert 10 < shown_first < 30  # Both orders were used, about half each.
  # The order depends on the seed and the id alone.
  assert [judge.a_shown_first(1, e[0]) for e in examples] != [
      judge.a_shown_first(0, e[0]) for e in examples]


def test_unparsable_verdict_is_counted_and_exit_status_is_1(
    server, tmp_path, capsys):
  examples = EXAMPLES[:3] + [("13", "hin", "GARBLE this", "and that")]
  a, b = _files(tmp_path, examples)
  assert judge.main(_args(server, a, b, tmp_path / "out")) == 1
  summary = json.loads(
      (tmp_path / "out" / "summary.json").read_text())["per_language"]
  assert summary["hin"]["pairs"] == 4
  assert summary["hin"]["unparsable"] == 1
  assert summary["hin"]["a_wins"] + summary["hin"]["ties"] + summary[
      "hin"]["b_wins"] == 3
  assert summary["hin"]["a_win_rate"] == pytest.approx(100 / 3)
  assert "1 of 4 pairs unjudged (1 unparsable" in capsys.readouterr().err


def test_transient_failure_is_retried_and_a_dead_one_counted(
    server, tmp_path):
  examples = [("1", "eng", "FLAKY but longer", "short"),
              ("2", "eng", "DOWN", "x")]
  a, b = _files(tmp_path, examples)
  status = judge.main(_args(server, a, b, tmp_path / "out",
                            "--max_retries=2"))
  assert status == 1
  judgments = {j["id"]: j for j in map(json.loads, (
      tmp_path / "out" / "judgments.jsonl").read_text().splitlines())}
  assert judgments["1"]["status"] == "ok" and judgments["1"]["winner"] == "a"
  assert judgments["2"]["status"] == "error"
  assert "HTTP 503" in judgments["2"]["raw"]
  prompts = [r["body"]["messages"][-1]["content"] for r in server.requests]
  assert sum("FLAKY" in p for p in prompts) == 2  # One retry.
  assert sum("DOWN" in p for p in prompts) == 3   # 1 + max_retries.


def test_bad_lines_and_unpaired_ids_are_named_and_counted(
    server, tmp_path, capsys):
  a_rows = [json.dumps({"id": "1", "language": "eng", "inputs": "p1",
                        "prediction": "long answer"}),
            "{not json",
            json.dumps({"id": "2", "language": "eng", "inputs": "p2"}),
            json.dumps({"id": "3", "language": "eng", "inputs": "p3",
                        "prediction": 7}),
            json.dumps({"id": "4", "language": "eng", "inputs": "other",
                        "prediction": "y"})]
  a = tmp_path / "a.jsonl"
  a.write_text("\n".join(a_rows) + "\n", encoding="utf-8")
  b = _write(tmp_path / "b.jsonl", [
      {"id": i, "language": "eng", "inputs": f"p{i}", "prediction": "b"}
      for i in ("1", "2", "4", "5")])
  assert judge.main(_args(server, str(a), b, tmp_path / "out")) == 0
  err = capsys.readouterr().err
  assert f"{a}:2: invalid JSON" in err
  assert f"{a}:3: missing field(s) ['prediction']; line skipped" in err
  assert f"{a}:4: field 'prediction' must be a string, got int" in err
  assert "id '4': 'inputs' differ" in err
  assert "id '5' is in" in err and "id '2' is in" in err
  meta = json.loads((tmp_path / "out" / "summary.json").read_text())
  assert meta["skipped_lines"] == {str(a): 3, b: 0}
  assert meta["unpaired_or_mismatched"] == 3
  assert meta["per_language"]["overall"]["pairs"] == 1


def test_refusing_endpoint_and_missing_key_exit_2(server, tmp_path, capsys,
                                                  monkeypatch):
  server.api_key = "sesame"
  a, b = _files(tmp_path, EXAMPLES[:2])
  assert judge.main(_args(server, a, b, tmp_path / "o1")) == 2
  assert "answered HTTP 401" in capsys.readouterr().err
  assert judge.main(_args(server, a, b, tmp_path / "o2",
                          "--api_key_env=AYA_TEST_JUDGE_KEY")) == 2
  assert "AYA_TEST_JUDGE_KEY" in capsys.readouterr().err
  monkeypatch.setenv("AYA_TEST_JUDGE_KEY", "sesame")
  assert judge.main(_args(server, a, b, tmp_path / "o3",
                          "--api_key_env=AYA_TEST_JUDGE_KEY")) == 0
  assert server.requests[-1]["auth"] == "Bearer sesame"


def _refusing_url():
  """A 127.0.0.1 URL on which nothing listens (connection refused)."""
  probe = http.server.HTTPServer(("127.0.0.1", 0),
                                 http.server.BaseHTTPRequestHandler)
  port = probe.server_address[1]
  probe.server_close()
  return f"http://127.0.0.1:{port}/v1"


def test_unreachable_endpoint_stops_the_run_after_the_first_pair(
    tmp_path, capsys):
  a, b = _files(tmp_path, EXAMPLES[:3])
  client = judge.JudgeClient(_refusing_url(), "m", max_retries=1,
                             backoff_s=0, timeout_s=5)
  pairs, _ = judge.pair_generations(judge.read_generations(a)[0],
                                    judge.read_generations(b)[0])
  calls = []

  def complete(messages):
    calls.append(messages)
    return client.complete(messages)

  with pytest.raises(judge.JudgeError, match="first request failed"):
    judge.judge_pairs(pairs, complete, seed=0)
  assert len(calls) == 1  # The other pairs were never sent.
  assert judge.main([f"--a={a}", f"--b={b}", f"--judge_url={client.url}",
                     "--judge_model=m", f"--output_dir={tmp_path / 'o'}",
                     "--max_retries=0"]) == 2
  assert "Is the judge serving at --judge_url?" in capsys.readouterr().err


@pytest.mark.parametrize("reply, verdict", [
    ("Response 1 is better.\n[[1]]", "1"),
    ("[[2]]", "2"),
    ("Equal quality. [[ TIE ]]", "tie"),
    ("Reasoning...\nVerdict: Response 2", "2"),
    ("**Final verdict: tie**", "tie"),
    ("2", "2"),
    ("I pick [[1]]. Actually [[2]].", None),
    ("Both are good.", None),
    ("Response 12", None),
    ("", None),
])
def test_parse_verdict(reply, verdict):
  assert judge.parse_verdict(reply) == verdict


def test_to_winner_maps_positions_back_to_models():
  assert judge.to_winner("1", a_first=True) == "a"
  assert judge.to_winner("1", a_first=False) == "b"
  assert judge.to_winner("2", a_first=False) == "a"
  assert judge.to_winner("tie", a_first=False) == "tie"
