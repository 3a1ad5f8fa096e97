#!/usr/bin/env bash
# Create a virtual environment with pinned Airflow and this package (editable, with test extras).
# Usage: scripts/bootstrap.sh VENV_DIR AIRFLOW_VERSION
set -euo pipefail
venv=$1
airflow_version=$2
python=${PYTHON:-python3}
root=$(cd "$(dirname "$0")/.." && pwd)
stamp="$venv/.seedream-installed"
want="airflow=$airflow_version $(sha256sum "$root/pyproject.toml" | cut -c1-16)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi
echo "Installing apache-airflow==$airflow_version and airflow-provider-seedream into $venv ..."
"$python" -m venv "$venv"
constraints=()
pytag=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
file="$root/constraints/airflow-$airflow_version-python-$pytag.txt"
if [[ -f "$file" ]]; then
  constraints=(-c "$file")
fi
# This machine's pip configuration names local indexes that may not exist; their warnings are noise here.
set +o pipefail
"$venv/bin/pip" install --disable-pip-version-check -q "${constraints[@]}" \
  "apache-airflow==$airflow_version" -e "$root[test]" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
status=${PIPESTATUS[0]}
set -o pipefail
if [[ $status -ne 0 ]]; then
  echo "pip install failed ($status)" >&2
  exit "$status"
fi
echo "$want" > "$stamp"
