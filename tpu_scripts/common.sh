#!/usr/bin/env bash
# Shared by the tpu_scripts: flag parsing, the dry-run switch, and the one
# function that runs (or, with --dry-run, prints) every external command.
# Sourced, never run. Each script sets SCRIPT_DOC, declares its flags with
# `flag NAME DEFAULT HELP` and calls `parse_flags "$@"`.

set -euo pipefail

REQUIRED="(required)"
DRY_RUN=0
declare -A FLAGS=()
declare -a FLAG_ORDER=()
declare -a HELP_LINES=()

# flag NAME DEFAULT HELP: declares --NAME; DEFAULT "$REQUIRED" = must be given.
flag() {
  FLAGS["$1"]="$2"
  FLAG_ORDER+=("$1")
  HELP_LINES+=("  --$1=VALUE  $3 [${2:-empty}]")
}

usage() {
  printf '%s\n' "usage: $(basename "$0") [--dry-run] --flag=value ..." \
    "${SCRIPT_DOC}" "flags:" "${HELP_LINES[@]}" \
    "  --dry-run  print the exact commands instead of running them"
}

die() {
  printf 'error: %s\n' "$*" >&2
  exit 2
}

parse_flags() {
  local arg name value
  for arg in "$@"; do
    case "${arg}" in
      --dry-run) DRY_RUN=1 ;;
      -h|--help) usage; exit 0 ;;
      --*=*)
        name="${arg%%=*}"; name="${name#--}"; value="${arg#*=}"
        [[ -v "FLAGS[${name}]" ]] || die "unknown flag --${name} (see --help)"
        FLAGS["${name}"]="${value}" ;;
      *) die "unexpected argument '${arg}': flags are --name=value (see --help)" ;;
    esac
  done
  for name in "${FLAG_ORDER[@]}"; do
    [[ "${FLAGS[${name}]}" != "${REQUIRED}" ]] ||
      die "--${name} is required (see --help)"
  done
}

# The arguments, shell-quoted, on one line: what --dry-run prints.
quoted() {
  local out
  printf -v out '%q ' "$@"
  printf '%s\n' "${out% }"
}

# run CMD ARGS...: executes, or prints the exact command with --dry-run.
run() {
  if [[ "${DRY_RUN}" == 1 ]]; then
    quoted "$@"
  else
    printf '+ %s\n' "$(quoted "$@")" >&2
    "$@"
  fi
}

# The gcloud flags every TPU VM command shares.
tpu_location_flags() {
  printf '%s\n' "--project=${FLAGS[project]}" "--zone=${FLAGS[zone]}"
}

# ssh_all COMMAND: runs a shell command on every worker of the slice.
ssh_all() {
  local location
  mapfile -t location < <(tpu_location_flags)
  run gcloud compute tpus tpu-vm ssh "${FLAGS[name]}" "${location[@]}" \
    --worker=all --command="$1"
}

# The flags that name a slice, declared by every script that touches one.
slice_flags() {
  flag name "${REQUIRED}" "TPU VM (node) name"
  flag project "${REQUIRED}" "Google Cloud project"
  flag zone "${REQUIRED}" "zone, e.g. us-central2-b (v4)"
}

# A value spliced into a remote shell command: refuse anything but a plain
# token, so a flag can never inject shell syntax on the workers.
plain_token() {
  [[ "$2" =~ ^[A-Za-z0-9_.:/=@,+-]+$ ]] ||
    die "--$1='$2': only letters, digits and _.:/=@,+- are allowed"
}
