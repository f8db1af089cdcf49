#!/usr/bin/env bash
# Rebuilds the SeqIO offline cache of `aya_xp3x_yor` on the shipped sample,
# with SeqIO's own cache job on Apache Beam's DirectRunner. Run it in the
# cache environment of requirements/beam.txt (Beam cannot share the main
# venv's pins; see that file), from the repository root:
#
#   BEAM_PYTHON=/path/to/beam-venv/bin/python tasks/data/sample_cache/build_with_beam.sh
#
# tests/test_tasks_caching.py trains from the result with USE_CACHED_TASKS.
# At scale, run the same job with --pipeline_options=--runner=DataflowRunner,...
set -euo pipefail
out="$(dirname "$0")"
rm -rf "${out}/aya_xp3x_yor"
AYA_DATA_DIR=tasks/data/sample AYA_VOCABULARY=demo \
  "${BEAM_PYTHON:-python}" -m seqio.scripts.cache_tasks_main \
  --module_import=aya_t5x.tasks \
  --tasks=aya_xp3x_yor \
  --output_cache_dir="${out}" \
  --min_shards=2 \
  --pipeline_options=--runner=DirectRunner
