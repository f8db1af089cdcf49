#!/usr/bin/env bash
# Deletes a slice (and its queued resource), e.g. at the end of a run.
SCRIPT_DOC="Delete a TPU VM slice or its queued resource."
# shellcheck source=tpu_scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

slice_flags
flag mode queued "queued (delete the queued resource and its node) or direct"
parse_flags "$@"

location=(--project="${FLAGS[project]}" --zone="${FLAGS[zone]}")
case "${FLAGS[mode]}" in
  queued)
    run gcloud compute tpus queued-resources delete "${FLAGS[name]}" \
      "${location[@]}" --force --quiet ;;
  direct)
    run gcloud compute tpus tpu-vm delete "${FLAGS[name]}" "${location[@]}" \
      --quiet ;;
  *) die "--mode='${FLAGS[mode]}': expected queued or direct" ;;
esac
