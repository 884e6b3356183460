#!/usr/bin/env bash
# A scripted agent conversation through the VideoGenerator-shaped wrapper
# (avatar_agent.py): three utterances, silences, one barge-in.
# Usage: run.sh [--check]   (CI passes --check: exit 1 when a check fails)
set -euo pipefail
. "$(dirname "$0")/../common.sh"
# PyGObject comes from Debian (python3-gi): prefer a python3 that has it.
PY=${PYTHON:-python3}
"$PY" -c "import gi" 2>/dev/null || PY=/usr/bin/python3
PYTHONPATH="$HERE/agent${PYTHONPATH:+:$PYTHONPATH}" \
  "$PY" -u "$HERE/agent/agent_demo.py" "$LA_MODEL_DIR" "$LA_REFERENCE_IMAGE" "$LA_MAX_AREA" "$@"
