#!/usr/bin/env bash
# nself migrate → nself-migrate. A drop-in for the nself CLI's src/cli/migrate.sh, shipped in the
# nself-migrate package as share/nself/migrate.sh: copy or symlink it over <nself install>/src/cli/migrate.sh
# (e.g. ~/.nself/src/cli/migrate.sh). The nself CLI runs this file for `nself migrate …`; it becomes
# `nself-migrate …` with the same arguments (exec), so that output and exit code are the answer.
# (No cmd_migrate() function here: without one the nself CLI runs the file with bash instead of sourcing it.)

if ! command -v nself-migrate >/dev/null 2>&1; then
  printf '%s\n' 'error: `nself migrate` is nself-migrate, which is not on PATH' \
    'hint: install it (Node.js 20 or newer): `npm link` in its checkout, or `npm install -g <its directory or .tgz>`' >&2
  exit 127
fi
exec nself-migrate "$@"
