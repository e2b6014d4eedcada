#!/bin/bash
# Bash create: what it was given goes to $report (env -0, byte for byte); it exports MADE (an output) and
# word (an attribute of its node), the first line of its artifact `words`.
set -eu
. "$(dirname "$0")/lib.sh"
env -0 > "$report"
export MADE="made from: $greeting"
export word
word=$(first_word "$words")
echo "produced for $NODE on $HOST"
