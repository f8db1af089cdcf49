#!/usr/bin/env bash
# Installs one pinned commit of this repository on every worker of a slice:
# `git archive` of the commit, copied to all workers, unpacked, and a
# Python 3.11 venv with the locked pins plus libtpu (requirements/tpu.txt).
# The commit is written to ~/DIR/.commit so a run can say what it ran.
SCRIPT_DOC="Install a pinned commit of aya_t5x on all workers of a TPU slice."
# shellcheck source=tpu_scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
slice_flags
flag commit HEAD "commit of this checkout to install (resolved to its SHA)"
flag remote_dir aya_t5x "directory under the workers' home"
flag python python3.11 "Python 3.11 interpreter on the workers"
parse_flags "$@"
plain_token remote_dir "${FLAGS[remote_dir]}"
plain_token python "${FLAGS[python]}"

sha="$(git -C "${repo_root}" rev-parse --verify "${FLAGS[commit]}^{commit}")" ||
  die "--commit='${FLAGS[commit]}' is not a commit of ${repo_root}"
archive="/tmp/aya_t5x-${sha}.tar.gz"
dir="${FLAGS[remote_dir]}"

run git -C "${repo_root}" archive --format=tar.gz --prefix="${dir}/" \
  --output="${archive}" "${sha}"
run gcloud compute tpus tpu-vm scp "${archive}" "${FLAGS[name]}:" \
  --project="${FLAGS[project]}" --zone="${FLAGS[zone]}" --worker=all

steps=(
  "set -euo pipefail"
  "sudo apt-get update -qq"
  "sudo apt-get install -y -qq ${FLAGS[python]} ${FLAGS[python]}-venv"
  "rm -rf ~/${dir}"
  "tar -xzf ~/$(basename "${archive}") -C ~"
  "cd ~/${dir}"
  "${FLAGS[python]} -m venv .venv"
  ".venv/bin/pip install --quiet -r requirements/lock.txt -r requirements/tpu.txt"
  ".venv/bin/pip install --quiet --no-deps --no-build-isolation -e ."
  "echo ${sha} > .commit"
)
remote="$(printf '%s; ' "${steps[@]}")"
ssh_all "${remote}"
