#!/usr/bin/env bash
# Shows a run's state: the slice (READY, PREEMPTED, ...), each worker's exit
# code if it finished, and the tail of worker 0's log on GCS; with
# --follow=true, again every --interval seconds until worker 0 exits.
SCRIPT_DOC="Watch a training run: slice state, exit codes, log tail."
# shellcheck source=tpu_scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

slice_flags
flag logs "${REQUIRED}" "gs:// log folder (launch.sh: MODEL_DIR/logs)"
flag lines 20 "log lines to show"
flag follow false "true: repeat until worker 0 has exited"
flag interval 120 "seconds between looks with --follow=true"
parse_flags "$@"

logs="${FLAGS[logs]%/}"
look() {
  run gcloud compute tpus tpu-vm describe "${FLAGS[name]}" \
    --project="${FLAGS[project]}" --zone="${FLAGS[zone]}" \
    --format=value\(state,health\)
  run gcloud storage ls "${logs}/*.exit" || true
  if [[ "${DRY_RUN}" == 1 ]]; then
    printf '# | tail -n %s\n' "${FLAGS[lines]}"
    run gcloud storage cat "${logs}/worker-0.log"
  else
    run gcloud storage cat "${logs}/worker-0.log" | tail -n "${FLAGS[lines]}"
  fi
}

look
[[ "${FLAGS[follow]}" == true && "${DRY_RUN}" == 0 ]] || exit 0
until gcloud storage cat "${logs}/worker-0.exit" > /dev/null 2>&1; do
  sleep "${FLAGS[interval]}"
  look
done
