"""Which training rows are evaluation examples, by their split metadata.

xP3x (and the Aya Collection's templated configs) are built from datasets
whose validation and test splits are the suite's evaluation sets: xP3x
carries FLORES-200 dev and devtest, GEM/xlsum test, and the xcopa, xnli,
xwinograd, xstory_cloze and tydiqa evaluation splits. Their rows keep the
`dataset`, `config` and `split` they came from, so an evaluation row can be
recognised from its metadata alone, whatever file it sits in.

`SUITE_SPLITS` lists, for every benchmark of the suite (`aya_t5x.tasks.eval`),
the names a training source may give its dataset and every split that must
never be trained on: each split an evaluation reads, plus the neighbours a
run may be scored on instead (FLORES dev when devtest is evaluated, XL-Sum
test beside validation, the test split of the zero-shot sets).
`EvalSplitFilter` drops such rows, counting each under the reason
`eval_split` and the field `<benchmark>/<split>`, so a task's report says how
many rows of which evaluation set it held (xP3x tasks are per language, so
the counts are per source and language).

Text overlap that metadata cannot see (an evaluation example copied into
another dataset) is `aya_t5x.decontaminate`'s job.
"""

import dataclasses
from collections.abc import Iterable

from aya_t5x import preprocessors

REASON = "eval_split"


@dataclasses.dataclass(frozen=True)
class EvalSplits:
  """The splits of one evaluation set that training must not see."""

  # The benchmark's name in counts (e.g. "flores").
  name: str
  # Phrases naming the dataset in a row's `dataset` value (whole words,
  # `preprocessors.contains_phrase`): "flores" matches "facebook/flores".
  names: tuple[str, ...]
  # Split values of the evaluation rows, as sources write them.
  splits: tuple[str, ...]
  # The Hub repositories the suite reads this set from.
  repos: tuple[str, ...] = ()

  def matches(self, dataset: str) -> bool:
    return any(preprocessors.contains_phrase(dataset, n) for n in self.names)


# Every benchmark of the suite (module docstring). Split names appear as each
# source spells them: the xstory_cloze loading script calls its evaluation
# split "validation", its parquet conversion "eval".
SUITE_SPLITS = (
    EvalSplits("flores", ("flores", "flores200", "flores 200", "flores plus"),
               ("dev", "devtest"),
               ("facebook/flores", "openlanguagedata/flores_plus")),
    EvalSplits("xlsum", ("xlsum", "xl sum"), ("validation", "test"),
               ("csebuetnlp/xlsum",)),
    EvalSplits("tydiqa", ("tydiqa", "tydi qa", "tydiqa goldp"),
               ("validation", "dev", "test"),
               ("google-research-datasets/tydiqa", "khalidalt/tydiqa-goldp")),
    EvalSplits("xcopa", ("xcopa",), ("validation", "test"),
               ("cambridgeltl/xcopa",)),
    EvalSplits("xnli", ("xnli",), ("validation", "test"), ("facebook/xnli",)),
    EvalSplits("xstorycloze", ("xstory cloze", "xstorycloze"),
               ("validation", "eval", "test"), ("juletxara/xstory_cloze",)),
    EvalSplits("xwinograd", ("xwinograd",), ("test",),
               ("Muennighoff/xwinograd",)),
    EvalSplits("mmlu", ("okapi mmlu", "global mmlu", "m mmlu"),
               ("dev", "validation", "test"),
               ("jon-tow/okapi_mmlu", "CohereLabs/Global-MMLU",
                "CohereForAI/Global-MMLU")),
    EvalSplits("aya_evaluation_suite", ("aya evaluation suite",), ("test",),
               ("CohereForAI/aya_evaluation_suite",
                "CohereLabs/aya_evaluation_suite")),
    EvalSplits("m_arenahard", ("arenahard", "arena hard", "m arenahard"),
               ("test",), ("CohereLabs/m-ArenaHard", "CohereForAI/m-ArenaHard")),
    # The red-teaming prompts have one split, `train`, all of it evaluated.
    EvalSplits("harmfulness", ("aya redteaming",), ("train",),
               ("CohereForAI/aya_redteaming", "CohereLabs/aya_redteaming")),
)


def for_repo(repo_id: str, sets: Iterable[EvalSplits] = SUITE_SPLITS
             ) -> EvalSplits | None:
  """The entry whose repositories include `repo_id` (either Cohere owner)."""
  owner, _, name = repo_id.partition("/")
  aliases = {repo_id}
  if owner in ("CohereForAI", "CohereLabs"):
    aliases |= {f"CohereForAI/{name}", f"CohereLabs/{name}"}
  for entry in sets:
    if aliases & set(entry.repos):
      return entry
  return None


@dataclasses.dataclass(frozen=True)
class EvalSplitFilter:
  """Drops rows of an evaluation split (module docstring).

  Reads the row fields `dataset` and `split` (a source without a `split`
  column keeps every row: it cannot tell). Runs before every other filter
  so evaluation rows are counted as such, not as pruned templates.
  """

  sets: tuple[EvalSplits, ...] = SUITE_SPLITS
  stage: str = "pre_cap"

  def check(self, row: preprocessors.Row) -> tuple[str, str] | None:
    split = preprocessors.as_text(row.get("split")).strip().lower()
    if not split:
      return None
    dataset = (f"{preprocessors.as_text(row.get('dataset'))} "
               f"{preprocessors.as_text(row.get('config'))}")
    for entry in self.sets:
      if split in entry.splits and entry.matches(dataset):
        return REASON, f"{entry.name}/{split}"
    return None
