"""SeqIO mixtures of aya_t5x, imported as `aya_t5x.mixtures`.

Mixtures name tasks, so the tasks are registered first.
"""

import aya_t5x.tasks  # pylint: disable=unused-import
from aya_t5x.mixtures import demo  # pylint: disable=unused-import
