# Environment for the recipe: the project venv and the recipe's own utils/.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && cd ../../.. && pwd)
if [ -z "${VIRTUAL_ENV:-}" ] && [ -f "$root/tools/venv/bin/activate" ]; then
  # shellcheck disable=SC1091
  . "$root/tools/venv/bin/activate"
fi
export PATH=$PWD/utils:$PATH
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} LC_ALL=C.UTF-8
