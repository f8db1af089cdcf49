"""The Aya mixtures over the shipped sample data, and the demo's mixture.

`<scheme>_sample` (e.g. `aya_translation_heavy_sample`) has the rates of
`aya.<scheme>` over the sample in `tasks/data/sample`: the same six sources
(and safety), read through the same Hub loaders and filters, with the
12-language demo vocabulary, so a CPU can draw from them, train on them and
check the rates without network. The sample tasks (`aya_sample_*`) always
read the shipped files, whatever AYA_DATA_DIR says, and are catalogued under
`<source>:sample` so they never join the full mixtures.

The sample has about 250 examples (a few rows per language and dataset),
which a model memorizes in minutes, and no validation split. The demo
therefore trains on `aya_demo_translation_heavy`: the translation-heavy
sample at half the budget, Table 3 proportions kept among its sources, and
the synthetic 12-language demo tasks (copy, reverse words, translate;
`tasks/data/demo`) at the other half, which carry a validation split to
evaluate on.
"""

import dataclasses
import os

from absl import logging
import seqio
import tensorflow as tf

from aya_t5x import languages
from aya_t5x import mixing
from aya_t5x import sources
from aya_t5x import vocabularies
from aya_t5x.mixtures import aya
from aya_t5x.tasks import aya_collection
from aya_t5x.tasks import aya_dataset
from aya_t5x.tasks import catalog
from aya_t5x.tasks import data_provenance
from aya_t5x.tasks import demo as demo_tasks
from aya_t5x.tasks import registry_helpers
from aya_t5x.tasks import safety
from aya_t5x.tasks import sharegpt_command
from aya_t5x.tasks import xp3x

SUFFIX = "_sample"
TASK_PREFIX = "aya_sample"
CATALOG_SUFFIX = ":sample"
SAMPLE_DIR = registry_helpers.SAMPLE_DIR
DEMO_MIXTURE = "aya_demo_translation_heavy"
DEMO_SOURCE = "demo"
# The demo tasks' percent of the demo mixture (module docstring).
DEMO_PERCENT = 50.0
# Rows a sample task's shuffle buffer holds (see register_tasks).
SHUFFLE_BUFFER_SIZE = 128


@dataclasses.dataclass(frozen=True)
class SampleFiles:
  """A Hub repository's files as laid out in the sample (a `FileSet`)."""

  hub: sources.HubFiles
  root: str = SAMPLE_DIR

  @property
  def splits(self):
    return self.hub.splits

  def resolve(self, split: str) -> list[sources.ResolvedFile]:
    if split not in self.hub.split_patterns:
      raise ValueError(f"{self.hub.repo_id} has no split {split!r}; splits: "
                       f"{sorted(self.hub.split_patterns)}.")
    base = os.path.join(self.root, self.hub.repo_id)
    patterns = self.hub.split_patterns[split]
    paths = sorted({p for pattern in patterns
                    for p in tf.io.gfile.glob(
                        os.path.join(base, pattern))})
    if not paths:
      raise FileNotFoundError(f"The sample has no files of "
                              f"{self.hub.repo_id} split {split!r} (patterns "
                              f"{list(patterns)} under {base}).")
    return [sources.ResolvedFile(p, os.path.relpath(p, base).replace(
        os.sep, "/")) for p in paths]


def _from_sample(spec: sources.SourceSpec) -> sources.SourceSpec:
  return dataclasses.replace(spec, files=SampleFiles(spec.files))


def _user_files(directory: str) -> dict[str, tuple[str, ...]]:
  return {"train": (os.path.join(SAMPLE_DIR, directory, "train*.jsonl"),)}


def sample_languages() -> tuple[str, ...]:
  """Registry codes of the sample's xP3x directories (e.g. `swh_Latn`)."""
  root = os.path.join(SAMPLE_DIR, xp3x.REPO_ID, "data")
  found = {languages.code(d.split("_")[0]) for d in os.listdir(root)}
  return tuple(sorted(found))


def translated_datasets() -> tuple[str, ...]:
  """The translated configs the sample has files for."""
  root = os.path.join(SAMPLE_DIR, aya_collection.REPO_ID)
  return tuple(d for d in aya_collection.TRANSLATED_DATASETS
               if os.path.isdir(os.path.join(root, d)))


def _specs():
  """(task name, spec, language, dataset) of every sample task."""
  for code in sample_languages():
    yield (xp3x.task_name(code, f"{TASK_PREFIX}_xp3x"),
           _from_sample(xp3x.spec(code)), code, None)
    yield (aya_dataset.task_name(code, f"{TASK_PREFIX}_dataset"),
           _from_sample(aya_dataset.spec(code)), code, aya_dataset.DATASET)
    yield (aya_collection.templated_task_name(code, f"{TASK_PREFIX}_templated"),
           _from_sample(aya_collection.templated_spec(code)), code, None)
    for dataset in translated_datasets():
      yield (aya_collection.translated_task_name(
          dataset, code, f"{TASK_PREFIX}_translated"),
             _from_sample(aya_collection.translated_spec(dataset, code)),
             code, dataset)
  yield (f"{TASK_PREFIX}_data_provenance",
         _from_sample(data_provenance.spec()), None, None)
  yield (f"{TASK_PREFIX}_sharegpt_command",
         sharegpt_command.spec(_user_files("sharegpt_command")), None,
         aya.SHAREGPT_COMMAND)
  yield (f"{TASK_PREFIX}_safety_distillation",
         safety.spec(_user_files("safety_distillation")), None,
         "safety_distillation")


def register_tasks() -> list[mixing.Member]:
  """Registers the sample tasks (demo vocabulary); returns them as members.

  They are the production recipe (`registry_helpers`) with a small shuffle
  buffer: a sample task holds at most a few dozen rows, so SeqIO's default
  of 1,000 per task would only slow the start and bloat the iterator state
  saved with every demo checkpoint.
  """
  members = []
  for name, spec, language, dataset in _specs():
    if name not in seqio.TaskRegistry.names():
      seqio.TaskRegistry.add(
          name, source=sources.RowSource(name, spec),
          preprocessors=registry_helpers.preprocessors_list(),
          output_features=registry_helpers.output_features(
              vocabularies.demo_vocabulary()),
          metric_fns=[], shuffle_buffer_size=SHUFFLE_BUFFER_SIZE)
    catalog.add(catalog.Entry(name, spec.source + CATALOG_SUFFIX, language,
                              dataset))
    members.append(mixing.Member(name, spec.source, dataset))
  return members


def sample_scheme(scheme: mixing.Scheme) -> mixing.Scheme:
  return mixing.Scheme(scheme.name + SUFFIX, scheme.source_percent)


def demo_members() -> list[mixing.Member]:
  """The demo data as one task: its 12 languages are equally large, so
  one task samples them as 12 would, with one pipeline instead of 12."""
  return [mixing.Member(demo_tasks.TASK_NAME, DEMO_SOURCE, None)]


def register() -> None:
  """Registers the sample tasks, the four sample mixtures and the demo's."""
  if not os.path.isdir(os.path.join(SAMPLE_DIR, xp3x.REPO_ID)):
    logging.warning("No sample data in %s: the *%s mixtures and %s are not "
                    "registered.", SAMPLE_DIR, SUFFIX, DEMO_MIXTURE)
    return
  members = register_tasks()
  for scheme in aya.SCHEMES:
    aya.register_scheme(sample_scheme(scheme),
                        [m for m in members if m.source in scheme.sources])
  demo_scheme = sample_scheme(aya.TRANSLATION_HEAVY).with_source(
      DEMO_MIXTURE, DEMO_SOURCE, DEMO_PERCENT)
  aya.register_scheme(
      demo_scheme,
      [m for m in members if m.source in aya.TRANSLATION_HEAVY.sources] +
      demo_members())


register()
