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


def _read_pins(path):
  with open(path) as f:
    return [l.strip() for l in f if l.strip() and not l.startswith("#")]


setuptools.setup(
    name="aya_t5x",
    version="0.1.0",
    description=__doc__,
    python_requires=">=3.11,<3.12",
    packages=setuptools.find_packages(include=["aya_t5x", "aya_t5x.*"])
    + ["aya_t5x.tasks", "aya_t5x.mixtures"]
    + [f"aya_t5x.tasks.{p}" for p in setuptools.find_packages("tasks")],
    package_dir=PACKAGE_DIR,
    package_data={
        "aya_t5x": ["assets/**/*"],
        "aya_t5x.tasks": ["data/**/*"],
    },
    include_package_data=True,
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
