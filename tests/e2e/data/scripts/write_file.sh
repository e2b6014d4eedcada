#!/bin/bash
# Bash create on the login host: the input `content` into the file `path`; exports who wrote it, and where.
set -eu
mkdir -p -- "$(dirname -- "$path")"
printf '%s' "$content" > "$path"
export who where
who=$(id -un)
where=$(hostname)
