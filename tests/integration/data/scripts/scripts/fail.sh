#!/bin/bash
# Fails after a long error output: only its end is worth a message.
echo "the first words of the error" >&2
for i in $(seq 200); do echo "noise line $i of the error output" >&2; done
echo "the last words of the error" >&2
exit 7
