#!/usr/bin/env bash
# Starts training on every worker of a slice (--worker=all), detached from
# the ssh session, each worker's log synced to GCS by remote_train.sh.
# Re-running it after a preemption resumes: `aya_t5x.train` restores the
# newest checkpoint in MODEL_DIR, data position included.
SCRIPT_DOC="Launch aya_t5x.train on all workers of a TPU slice."
# shellcheck source=tpu_scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

slice_flags
flag model_dir "${REQUIRED}" "gs:// MODEL_DIR (checkpoints, metrics)"
flag gin_files "gin/aya_13b_translation_heavy.gin,gin/hardware/v4_128.gin" "comma-separated --gin_file list (run, then hardware)"
flag gin "" "extra gin bindings, comma-separated NAME=VALUE (gin literals)"
flag logs "" "gs:// folder for logs (default: MODEL_DIR/logs)"
flag remote_dir aya_t5x "where setup.sh installed the repository"
parse_flags "$@"

[[ "${FLAGS[model_dir]}" == gs://* ]] ||
  die "--model_dir='${FLAGS[model_dir]}': every worker must reach it: use gs://"
plain_token model_dir "${FLAGS[model_dir]}"
plain_token remote_dir "${FLAGS[remote_dir]}"
logs="${FLAGS[logs]:-${FLAGS[model_dir]%/}/logs}"
plain_token logs "${logs}"

train=(.venv/bin/python -m aya_t5x.train --multiprocess
       "--gin.MODEL_DIR='${FLAGS[model_dir]}'")
IFS=, read -r -a gin_files <<< "${FLAGS[gin_files]}"
for gin_file in "${gin_files[@]}"; do
  plain_token gin_files "${gin_file}"
  train+=("--gin_file=${gin_file}")
done
if [[ -n "${FLAGS[gin]}" ]]; then
  IFS=, read -r -a bindings <<< "${FLAGS[gin]}"
  for binding in "${bindings[@]}"; do train+=("--gin.${binding}"); done
fi

command="$(quoted tpu_scripts/remote_train.sh "--logs=${logs}" -- "${train[@]}")"
ssh_all "cd ~/${FLAGS[remote_dir]} && nohup ${command} > /dev/null 2>&1 &"
