#!/bin/bash
# Bash relationship operation (pre_configure_source): its context goes to $report.
env -0 > "$report"
