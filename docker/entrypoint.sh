#!/bin/sh
# The container's entry point (Dockerfile: /opt/vigil/bin/vigil-entrypoint): runs `vigil "$@"`.
#
# Before a long-running command (`serve`, `consume`) it
#   1. refuses the development privacy keys, published in vigil's source, unless VIGIL_DEV=1;
#   2. brings the schema up to date (`vigil db upgrade`), waiting for PostgreSQL: a container
#      starts before its database accepts connections, so a PostgreSQL URL is tried
#      VIGIL_DB_ATTEMPTS times (30), every VIGIL_DB_PAUSE seconds (2).
# Then it execs vigil, so vigil is the container's main process and gets its signals (a
# `docker stop` is vigil's SIGTERM: it stops taking requests and saves its profiles).
# Any other command (`keys create ...`, `db --help`, `--version`) goes straight to vigil.
set -eu

attempts=${VIGIL_DB_ATTEMPTS:-30}
pause=${VIGIL_DB_PAUSE:-2}

# The Python vigil runs on: the one beside the `vigil` script (the image's venv), else python3.
vigil_bin=$(command -v vigil) || { echo "vigil-entrypoint: no vigil command on PATH" >&2; exit 127; }
python=$(dirname "$vigil_bin")/python
[ -x "$python" ] || python=python3

# Exit status 0: the keys in force (environment, vigil.toml) are the development keys; 1: they
# are a deployment's own; 2: the privacy settings do not load (the reason on stderr). The test
# is the one the engine itself makes (PrivacyKeys.uses_development_keys).
development_keys() {
  "$python" - <<'EOF'
import sys

try:
    from vigil.privacy import PrivacyKeys

    dev = PrivacyKeys.from_settings().uses_development_keys
except Exception as exc:
    print(f"vigil-entrypoint: the privacy settings do not load: {exc}", file=sys.stderr)
    sys.exit(2)
sys.exit(0 if dev else 1)
EOF
}

refuse_development_keys() {
  status=0
  development_keys || status=$?
  case $status in
    1) return 0 ;;
    0) ;;
    *) exit "$status" ;;
  esac
  if [ "${VIGIL_DEV:-}" = 1 ]; then
    echo "vigil-entrypoint: VIGIL_DEV=1: running with the development privacy keys" \
      "(published in vigil's source; never with real data)" >&2
    return 0
  fi
  cat >&2 <<'EOF'
vigil-entrypoint: refusing to start with the development privacy keys: they are published in
vigil's source, so anyone could reverse its pseudonyms and read its encrypted contact data.
Set the deployment's own keys:
  VIGIL_PRIVACY__HMAC_KEY          a long random secret, e.g. $(openssl rand -hex 32)
  VIGIL_PRIVACY__ENCRYPTION_KEYS   {"k1": "<base64 of 32 random bytes>"}, e.g. $(openssl rand -base64 32)
  VIGIL_PRIVACY__ENCRYPTION_KEY_ID k1
or, for a development run on synthetic data only, VIGIL_DEV=1.
EOF
  exit 78  # EX_CONFIG
}

# `vigil db upgrade` creates a missing schema or migrates an older one (idempotent; servers
# starting at once on PostgreSQL upgrade it once, under an advisory lock).
prepare_schema() {
  case ${VIGIL_DATABASE_URL:-} in
    postgres://* | postgresql://* | postgresql+*://*) ;;
    *) vigil db upgrade; return ;;  # SQLite (or a URL from vigil.toml): no server to wait for
  esac
  try=1
  until vigil db upgrade; do
    if [ "$try" -ge "$attempts" ]; then
      echo "vigil-entrypoint: the database did not answer after $attempts attempts" >&2
      exit 1
    fi
    echo "vigil-entrypoint: database not ready (attempt $try of $attempts); again in ${pause}s" >&2
    try=$((try + 1))
    sleep "$pause"
  done
}

case ${1:-} in
  serve | consume)
    refuse_development_keys
    prepare_schema
    ;;
esac

exec vigil "$@"
