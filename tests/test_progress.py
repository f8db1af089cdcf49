"""Progress: a live bar on a terminal, four plain lines anywhere else."""

import io

from aya_t5x import progress


class _Terminal(io.StringIO):

  def isatty(self):
    return True


def test_a_log_gets_one_plain_line_per_quarter():
  log = io.StringIO()
  with progress.Progress(400, "train", unit="step", stream=log) as bar:
    for step in range(1, 401):
      bar.set(loss=7.5 - step / 100, next_checkpoint=200 * (step // 200 + 1))
      bar.update()
  lines = log.getvalue().splitlines()
  assert [l.split(",")[0] for l in lines] == [
      "train: 100/400 (25%)", "train: 200/400 (50%)", "train: 300/400 (75%)",
      "train: 400/400 (100%)"]
  assert "loss 6.5, next checkpoint 200" in lines[0]
  assert "eta" in lines[0] and "elapsed" in lines[-1]
  assert "\r" not in log.getvalue()


def test_a_resumed_run_reports_only_the_quarters_still_ahead():
  log = io.StringIO()
  with progress.Progress(400, "train", initial=250, stream=log) as bar:
    bar.update(150)
  assert log.getvalue().splitlines()[0].startswith("train: 400/400 (100%)")
  assert len(log.getvalue().splitlines()) == 1


def test_a_terminal_gets_a_live_bar_with_the_status():
  terminal = _Terminal()
  with progress.Progress(10, "eval", unit="benchmark",
                         stream=terminal) as bar:
    bar.set(benchmark="xcopa")
    bar.update(10)
  text = terminal.getvalue()
  assert "\r" in text and "10/10" in text and "benchmark xcopa" in text


def test_a_disabled_bar_prints_nothing():
  log = io.StringIO()
  with progress.Progress(4, "train", stream=log, enabled=False) as bar:
    bar.update(4)
  assert not log.getvalue()
