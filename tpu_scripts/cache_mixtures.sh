#!/usr/bin/env bash
# Preprocesses and caches an Aya mixture's tasks once, with SeqIO's Beam job
# (aya_t5x.cache_tasks expands the mixture into its tasks), so that a pod
# slice trains from TFRecords instead of tokenizing on its hosts. Training
# reads the cache with --gin.USE_CACHED_TASKS=True once the cache folder is
# one of SeqIO's cache dirs (docs/scaling.md, "Preprocessing at scale").
#   DirectRunner: this machine (a sample, or a small mixture).
#   DataflowRunner: --runner=DataflowRunner --project --region --temp_location.
SCRIPT_DOC="Cache an Aya mixture with SeqIO's Beam job (local or Dataflow)."
# shellcheck source=tpu_scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

flag mixture aya_translation_heavy "mixture (or task) to cache"
flag output_cache_dir "${REQUIRED}" "cache folder (gs:// for Dataflow)"
flag runner DirectRunner "DirectRunner or DataflowRunner"
flag project "" "Dataflow: Google Cloud project"
flag region "" "Dataflow: region, e.g. us-central1"
flag temp_location "" "Dataflow: gs:// scratch folder"
flag max_num_workers 100 "Dataflow: worker cap"
flag sdk_container_image "" "Dataflow: image with the Beam venv's pins (requirements/beam.txt)"
flag min_shards 64 "TFRecord shards per task"
flag beam_python "${BEAM_PYTHON:-python3}" "python of the Beam venv (requirements/beam.txt)"
flag python .venv/bin/python "python of this repository's venv"
parse_flags "$@"

command=("${FLAGS[python]}" -m aya_t5x.cache_tasks
         "--mixture=${FLAGS[mixture]}"
         "--output_cache_dir=${FLAGS[output_cache_dir]}"
         "--runner=${FLAGS[runner]}" "--min_shards=${FLAGS[min_shards]}"
         "--beam_python=${FLAGS[beam_python]}")
if [[ "${FLAGS[runner]}" == DataflowRunner ]]; then
  command+=("--project=${FLAGS[project]}" "--region=${FLAGS[region]}"
            "--temp_location=${FLAGS[temp_location]}"
            "--pipeline_option=--max_num_workers=${FLAGS[max_num_workers]}")
  if [[ -n "${FLAGS[sdk_container_image]}" ]]; then
    command+=("--pipeline_option=--sdk_container_image=${FLAGS[sdk_container_image]}")
  fi
fi
run "${command[@]}"
