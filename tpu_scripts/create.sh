#!/usr/bin/env bash
# Creates a TPU VM slice: a queued resource (waits for capacity, the way to
# get a v4-128) or a direct `tpu-vm create`; then waits until it is ready.
SCRIPT_DOC="Create a TPU VM slice (queued resource or direct create)."
# shellcheck source=tpu_scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

slice_flags
flag accelerator v4-128 "accelerator type (v4-8, v4-32, v4-128, v5litepod-256, v5p-128, ...)"
flag runtime tpu-ubuntu2204-base "TPU VM software version"
flag mode queued "queued (queued-resources create) or direct (tpu-vm create)"
flag spot false "true: spot capacity (cheaper, preemptible)"
flag wait true "true: poll until the slice is ACTIVE/READY"
flag poll_seconds 60 "seconds between polls while waiting"
parse_flags "$@"

location=(--project="${FLAGS[project]}" --zone="${FLAGS[zone]}")
spot=()
[[ "${FLAGS[spot]}" == true ]] && spot=(--spot)

case "${FLAGS[mode]}" in
  queued)
    run gcloud compute tpus queued-resources create "${FLAGS[name]}" \
      --node-id="${FLAGS[name]}" "${location[@]}" \
      --accelerator-type="${FLAGS[accelerator]}" \
      --runtime-version="${FLAGS[runtime]}" "${spot[@]}"
    state_cmd=(gcloud compute tpus queued-resources describe "${FLAGS[name]}"
               "${location[@]}" --format=value\(state.state\))
    ready=ACTIVE ;;
  direct)
    run gcloud compute tpus tpu-vm create "${FLAGS[name]}" "${location[@]}" \
      --accelerator-type="${FLAGS[accelerator]}" \
      --version="${FLAGS[runtime]}" "${spot[@]}"
    state_cmd=(gcloud compute tpus tpu-vm describe "${FLAGS[name]}"
               "${location[@]}" --format=value\(state\))
    ready=READY ;;
  *) die "--mode='${FLAGS[mode]}': expected queued or direct" ;;
esac

if [[ "${FLAGS[wait]}" == true ]]; then
  if [[ "${DRY_RUN}" == 1 ]]; then
    printf '# until the state is %s, every %s s:\n' "${ready}" \
      "${FLAGS[poll_seconds]}"
    quoted "${state_cmd[@]}"
    exit 0
  fi
  until [[ "$("${state_cmd[@]}")" == "${ready}" ]]; do
    sleep "${FLAGS[poll_seconds]}"
  done
  printf '%s is %s\n' "${FLAGS[name]}" "${ready}"
fi
