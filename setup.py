"""aya_t5x: a T5X-style JAX runtime for massively multilingual instruction finetuning."""

import setuptools

# The training sources and mixtures live at the top of the repository (where
# researchers add their languages) but are imported as `aya_t5x.tasks` and
# `aya_t5x.mixtures`, so each SeqIO task is registered once under one name.
PACKAGE_DIR = {
    "aya_t5x": "aya_t5x",
    "aya_t5x.tasks": "tasks",
    "aya_t5x.mixtures": "mixtures",
}


def _packages():
  """Every folder under the three package roots, data folders included.

  Namespace discovery lists the asset and data folders (which hold no
  __init__.py) as packages too: setuptools then installs their files as
  package data without a "Package would be ignored" warning for each.
  """
  found = []
  for name, folder in PACKAGE_DIR.items():
    found.append(name)
    found += [f"{name}.{p}" for p in setuptools.find_namespace_packages(
        folder, exclude=["*__pycache__*"])
              if f"{name}.{p}" not in PACKAGE_DIR]
  return found


def _read_pins(path):
  with open(path) as f:
    return [l.strip() for l in f if l.strip() and not l.startswith("#")]


def _lower_bound(pin):
  """`name>=X.Y` (the tested release series) for a `name[extra]==X.Y.Z` pin.

  Versions 0.0.z keep all three parts (every release of such a package may
  break its API). The extra is dropped: `jax[cpu]` would pull a CPU jaxlib
  into an accelerator environment.
  """
  name, version = pin.split("==")
  parts = version.split(".")
  keep = 3 if parts[:2] == ["0", "0"] else 2
  return f"{name.split('[')[0]}>={'.'.join(parts[:keep])}"


def _lower_bounds(path):
  """Lower bounds for install_requires; the exact pins are for our own venv.

  Installed into an environment that already has jax, flax, orbax, seqio (a
  T5X one, say), aya_t5x must keep their versions when they are of the
  tested series or newer, not replace them. The exact set that CI tests
  stays in requirements/lock.txt (`make install` installs that).
  """
  return [_lower_bound(pin) for pin in _read_pins(path)]


setuptools.setup(
    name="aya_t5x",
    version="0.1.0",
    description=__doc__,
    python_requires=">=3.11,<3.13",
    packages=_packages(),
    package_dir=PACKAGE_DIR,
    # Every file of the data folders (vocabularies, language tables, the
    # shipped sample data); they are listed as packages above, so setuptools
    # neither warns about them nor leaves them out.
    package_data={"": ["*"]},
    exclude_package_data={"": ["*.pyc"]},
    install_requires=_lower_bounds("requirements/core.txt"),
    extras_require={
        "test": _lower_bounds("requirements/test.txt"),
        "hf": _lower_bounds("requirements/hf.txt"),
        "tpu": _lower_bounds("requirements/tpu.txt"),
    },
    entry_points={
        "console_scripts": [
            "aya_t5x_train=aya_t5x.train:console_main",
        ],
    },
)
