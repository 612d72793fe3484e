#!/bin/sh
# The image's entrypoint: runs one of the three services, named by the first
# argument (`docker run rockets ingest`). `exec` replaces the shell, so node
# is PID 1 and SIGTERM reaches the service's graceful shutdown directly.
set -eu
app_dir="${APP_DIR:-/app}"
case "${1:-}" in
  ingest | sequencer | api)
    service="$1"
    shift
    exec node "$app_dir/dist/cmd/$service/main.js" "$@"
    ;;
  *)
    echo "usage: rockets <ingest|sequencer|api>  (got \"${1:-}\")" >&2
    exit 64
    ;;
esac
