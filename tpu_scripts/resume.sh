#!/usr/bin/env bash
# Brings a preempted run back: if the slice is gone or not READY (spot and
# preemptible slices are taken back), delete what is left, create it again,
# install the same commit and launch the same command. Training resumes from
# the newest checkpoint in MODEL_DIR (data position included); a READY slice
# is only relaunched. A dry run shows the whole recovery path.
SCRIPT_DOC="Resume a run after preemption: recreate, set up, relaunch."
# shellcheck source=tpu_scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
here="$(dirname "${BASH_SOURCE[0]}")"

slice_flags
flag accelerator v4-128 "accelerator type, as for create.sh"
flag runtime tpu-ubuntu2204-base "TPU VM software version"
flag mode queued "queued or direct, as for create.sh"
flag spot false "true: spot capacity"
flag commit HEAD "commit to install, as for setup.sh"
flag model_dir "${REQUIRED}" "gs:// MODEL_DIR of the run to resume"
flag gin_files "gin/aya_13b_translation_heavy.gin,gin/hardware/v4_128.gin" "as for launch.sh"
flag gin "" "as for launch.sh"
parse_flags "$@"

slice=(--name="${FLAGS[name]}" --project="${FLAGS[project]}"
       --zone="${FLAGS[zone]}")
dry=()
[[ "${DRY_RUN}" == 1 ]] && dry=(--dry-run)
launch=("${here}/launch.sh" "${slice[@]}" "--model_dir=${FLAGS[model_dir]}"
        "--gin_files=${FLAGS[gin_files]}" "--gin=${FLAGS[gin]}" "${dry[@]}")

describe=(gcloud compute tpus tpu-vm describe "${FLAGS[name]}"
          --project="${FLAGS[project]}" --zone="${FLAGS[zone]}"
          --format=value\(state\))
if [[ "${DRY_RUN}" == 1 ]]; then
  quoted "${describe[@]}"
  printf '# if the state is not READY (shown: PREEMPTED):\n'
  state=PREEMPTED
else
  state="$("${describe[@]}" 2> /dev/null || echo MISSING)"
fi

if [[ "${state}" != READY ]]; then
  printf '# %s is %s: recreating it\n' "${FLAGS[name]}" "${state}" >&2
  if [[ "${state}" != MISSING ]]; then
    "${here}/delete.sh" "${slice[@]}" "--mode=${FLAGS[mode]}" "${dry[@]}"
  fi
  "${here}/create.sh" "${slice[@]}" "--accelerator=${FLAGS[accelerator]}" \
    "--runtime=${FLAGS[runtime]}" "--mode=${FLAGS[mode]}" \
    "--spot=${FLAGS[spot]}" "${dry[@]}"
  "${here}/setup.sh" "${slice[@]}" "--commit=${FLAGS[commit]}" "${dry[@]}"
fi
"${launch[@]}"
