#!/bin/bash
# Bash delete: the file and its folder.
rm -f -- "$path"
rmdir -- "$(dirname -- "$path")" 2>/dev/null || true
