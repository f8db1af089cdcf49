"""SeqIO mixtures of aya_t5x, imported as `aya_t5x.mixtures`.

Mixtures name tasks, so the tasks are registered first. `aya`: the three
Aya weighting schemes and Aya Safe over the full training sources; `sample`:
the same schemes over the shipped sample data, and the demo's mixture;
`demo`: the synthetic demo tasks at equal rates. See docs/mixtures.md.
"""

# pylint: disable=unused-import,g-import-not-at-top
import aya_t5x.tasks
from aya_t5x.mixtures import demo
from aya_t5x.mixtures import aya
from aya_t5x.mixtures import sample
