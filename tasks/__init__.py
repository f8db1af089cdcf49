"""SeqIO tasks of aya_t5x, imported as `aya_t5x.tasks`.

Importing this package registers every task once; `setup.py` maps this
directory to `aya_t5x.tasks` so task names stay unique across entry points.
"""

from aya_t5x.tasks import demo  # pylint: disable=unused-import
