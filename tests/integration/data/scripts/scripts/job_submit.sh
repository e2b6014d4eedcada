#!/bin/bash
# Runnable.submit: the job runs in the background in a folder of its own (this script's folder is removed
# when it returns), its output away from this script's; its id is that folder.
set -eu
mkdir -p -- "$work_dir"
job=$(mktemp -d "$work_dir/job-XXXXXX")
cd -- "$job"
MESSAGE=$message FAIL=$fail setsid bash -c '
  sleep 1
  if [ "$FAIL" = true ]; then echo "the job broke on purpose" >&2; echo 5 > exit_code; exit 5; fi
  printf %s "$MESSAGE" > out
  echo 0 > exit_code' >stdout 2>stderr </dev/null &
export TOSCA_JOB_ID=$job
