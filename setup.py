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


setuptools.setup(
    name="aya_t5x",
    version="0.1.0",
    description=__doc__,
    python_requires=">=3.11,<3.12",
    packages=_packages(),
    package_dir=PACKAGE_DIR,
    # Every file of the data folders (vocabularies, language tables, the
    # shipped sample data); they are listed as packages above, so setuptools
    # neither warns about them nor leaves them out.
    package_data={"": ["*"]},
    exclude_package_data={"": ["*.pyc"]},
    install_requires=_read_pins("requirements/core.txt"),
    extras_require={
        "test": _read_pins("requirements/test.txt"),
        "hf": _read_pins("requirements/hf.txt"),
        "tpu": _read_pins("requirements/tpu.txt"),
    },
    entry_points={
        "console_scripts": [
            "aya_t5x_train=aya_t5x.train:console_main",
        ],
    },
)
