#!/usr/bin/env bash
# Runs on each TPU VM worker (launch.sh starts it): runs the training
# command, writes its output to ~/aya_logs/worker-N.log, copies that log to
# GCS every --sync_seconds while training runs and once at the end, and
# leaves worker-N.exit (the exit code) beside it, which watch.sh reads.
# A second launch while training still runs here does nothing.
#   remote_train.sh --logs=gs://bucket/run/logs -- python -m aya_t5x.train ...
SCRIPT_DOC="Run a command on this worker with its log synced to GCS."
# shellcheck source=tpu_scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

flag logs "${REQUIRED}" "gs:// folder for the workers' logs"
flag sync_seconds 60 "seconds between log uploads"
own_flags=()
while [[ $# -gt 0 && "$1" != "--" ]]; do own_flags+=("$1"); shift; done
[[ $# -gt 1 ]] || die "expected: remote_train.sh --logs=gs://... -- COMMAND ..."
shift
parse_flags "${own_flags[@]}"

host="$(hostname)"
worker="worker-${host##*-w-}"
log="${HOME}/aya_logs/${worker}.log"
remote_log="${FLAGS[logs]%/}/${worker}.log"

if [[ "${DRY_RUN}" == 1 ]]; then
  printf '# output of this command to %s, copied every %s s to %s:\n' \
    "${log}" "${FLAGS[sync_seconds]}" "${remote_log}"
  quoted "$@"
  quoted gcloud storage cp "${log}" "${remote_log}"
  exit 0
fi

mkdir -p "$(dirname "${log}")"
pid_file="${HOME}/aya_logs/train.pid"
if [[ -f "${pid_file}" ]] && kill -0 "$(cat "${pid_file}")" 2> /dev/null; then
  printf 'training already runs here (pid %s): not starting another\n' \
    "$(cat "${pid_file}")" | tee -a "${log}"
  exit 0
fi
"$@" >> "${log}" 2>&1 &
pid=$!
printf '%s\n' "${pid}" > "${pid_file}"
while kill -0 "${pid}" 2> /dev/null; do
  gcloud storage cp --quiet "${log}" "${remote_log}" || true
  sleep "${FLAGS[sync_seconds]}"
done
status=0
wait "${pid}" || status=$?
gcloud storage cp --quiet "${log}" "${remote_log}"
printf '%s\n' "${status}" | gcloud storage cp - "${remote_log%.log}.exit"
exit "${status}"
