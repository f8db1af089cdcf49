"""SeqIO tasks of aya_t5x, imported as `aya_t5x.tasks`.

Importing this package registers every task once; `setup.py` maps this
directory to `aya_t5x.tasks` so task names stay unique across entry points.
Training sources (one module each; `catalog` lists their tasks by source,
language and dataset; `registry_helpers.register_dataset` adds your own):
`xp3x`, `aya_dataset`, `aya_collection` (templated and translated),
`data_provenance`, `sharegpt_command`, `safety`. Registering reads no data:
files are listed when a task is first read.
"""

if __name__ != "aya_t5x.tasks":
  # Importing the directory as `tasks` would register every task a second
  # time under other module names (setup.py maps it to aya_t5x.tasks).
  raise ImportError(f"Import aya_t5x.tasks, not {__name__}: tasks are "
                    "registered under one import name.")

# pylint: disable=unused-import,g-import-not-at-top
from aya_t5x.tasks import demo
from aya_t5x.tasks import catalog
from aya_t5x.tasks import registry_helpers
from aya_t5x.tasks import xp3x
from aya_t5x.tasks import aya_dataset
from aya_t5x.tasks import aya_collection
from aya_t5x.tasks import data_provenance
from aya_t5x.tasks import sharegpt_command
from aya_t5x.tasks import safety
