#!/usr/bin/env bash
# Run the example DAGs end to end against the emulator with `airflow dags test` (the edit, then three models
# chained), then say where the images are and which model made each.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-.venv}
[[ "$venv" = /* ]] || venv="$root/$venv"
demo="$root/.demo"
started=$(date +%s)

rm -rf "$demo/airflow"
mkdir -p "$demo/airflow" "$demo/output"
export AIRFLOW_HOME="$demo/airflow"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_FOLDER="$root/example_dags"
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="sqlite:///$AIRFLOW_HOME/airflow.db"
export AIRFLOW__LOGGING__LOGGING_LEVEL=INFO

# 1. The emulator of kie.ai, on a free loopback port.
"$venv/bin/python" -m seedream_emulator --port 0 --task-seconds 4 > "$demo/emulator.log" 2>&1 &
emulator_pid=$!
trap 'kill $emulator_pid 2>/dev/null || true' EXIT
url=""
for _ in $(seq 1 100); do
  url=$(sed -n 's/^seedream-emulator listening on \(http:[^ ]*\).*/\1/p' "$demo/emulator.log" | head -n1)
  [[ -n "$url" ]] && break
  sleep 0.1
done
if [[ -z "$url" ]]; then
  echo "The emulator did not start; its log:" >&2
  cat "$demo/emulator.log" >&2
  exit 1
fi
echo "Emulator of kie.ai listening on $url"

# 2. The connection (env var: no secret in the metadata DB) and the example's settings.
export AIRFLOW_CONN_SEEDREAM_DEFAULT="{\"conn_type\": \"seedream\", \"password\": \"demo-key\", \"host\": \"$url\"}"
sample=$("$venv/bin/python" -c "
import json, sys, urllib.request
listing = json.load(urllib.request.urlopen(sys.argv[1] + '/samples/'))
items = listing['samples'] if isinstance(listing, dict) else listing
first = items[0]
print(first['url'] if isinstance(first, dict) and 'url' in first else sys.argv[1] + '/samples/' + (first['name'] if isinstance(first, dict) else first))
" "$url")
export SEEDREAM_EXAMPLE_IMAGE_URL="$sample"
export SEEDREAM_EXAMPLE_OUTPUT_DIR="$demo/output"
export SEEDREAM_EXAMPLE_POLL_INTERVAL=1

# 3. A fresh metadata DB, then the DAG, with the deferrable sensor's trigger run in process.
"$venv/bin/airflow" db migrate > "$demo/db-migrate.log" 2>&1 || { cat "$demo/db-migrate.log" >&2; exit 1; }
echo "Running example_seedream_edit (input image: $sample) ..."
set +e
"$venv/bin/airflow" dags test example_seedream_edit 2>&1 | tee "$demo/dags-test.log" \
  | grep -E "airflow_provider_seedream|^Edited image stored|DagRun Finished|Error" \
  | sed -E -e 's/ +\[(airflow[a-zA-Z_.]*)\] loc=.*$//' -e 's/(DagRun Finished: dag_id=[^,]*).*(state=[a-z]+).*/\1, \2/' || true
set -e

# The sensor stored the images under output_path and the report task printed their URIs.
mapfile -t images < <(grep -o "Edited image stored: [^ ]*" "$demo/dags-test.log" | sed -e 's/^Edited image stored: //' -e 's#^file://##' | sort -u)
if [[ ${#images[@]} -eq 0 ]] || [[ ! -f "${images[0]}" ]]; then
  echo "The demo did not produce an image; see $demo/dags-test.log" >&2
  exit 1
fi
if grep -q "failed" <(grep -E "DagRun Finished|dag_run.*state" "$demo/dags-test.log" | tail -n1); then
  echo "The DAG run failed; see $demo/dags-test.log" >&2
  exit 1
fi

# 4. The family: text to image -> 5.0 Lite edit -> 4.0 edit with two images, each stored by its operator.
echo
echo "Running example_seedream_chain (three models chained) ..."
set +e
"$venv/bin/airflow" dags test example_seedream_chain > "$demo/dags-test-chain.log" 2>&1
set -e
mapfile -t chained < <(grep -o "Image stored by [^ ]* ([^)]*): [^ ]*" "$demo/dags-test-chain.log" | awk '!seen[$0]++')
if [[ ${#chained[@]} -lt 4 ]] || grep -q "failed" <(grep -E "DagRun Finished" "$demo/dags-test-chain.log" | tail -n1); then
  echo "The chained run did not store its images; see $demo/dags-test-chain.log" >&2
  exit 1
fi

echo
echo "Done in $(( $(date +%s) - started )) s. Edited image(s) written to (model seedream/4.5-edit):"
for f in "${images[@]}"; do
  echo "  $f ($(stat -c %s "$f") bytes)"
done
echo "Chained models, image(s) written to:"
for line in "${chained[@]}"; do
  f=$(sed -e 's/^.*): //' -e 's#^file://##' <<<"$line")
  echo "  $(sed -E 's/^Image stored by ([^ ]*) \(([^)]*)\): .*/\2 (task \1)/' <<<"$line"): $f ($(stat -c %s "$f") bytes)"
done
