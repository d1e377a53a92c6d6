#!/usr/bin/env bash
# Builds the image and checks it as a user would run it: a non-default $PORT, /health, a real
# photo classified, a non-root process, `docker stop` finishing within Cloud Run's 10-second
# grace, and as Vertex AI runs it: the model from AIP_STORAGE_URI (gcp-storage-emulator on
# loopback stands in for Cloud Storage) and the request a batch prediction job sends. Brings up a Docker engine first with shared/tools/docker-engine.sh (root).
# Fails, saying why, if any step fails, including the engine not coming up.
set -euo pipefail
cd "$(dirname "$0")/.."

ENGINE_SCRIPT=${DOCKER_ENGINE_SCRIPT:-../shared/tools/docker-engine.sh}
DATA_DIR=${MUGS_DATA_DIR:-data}
IMAGE=mug-classifier:smoke
NAME=mug-classifier-smoke-$$
PORT=18093
fail() { echo "SMOKE TEST FAILED: $*" >&2; exit 1; }
# The first line of container $1's log that holds $2, waiting up to 10 s for it: Docker copies
# a container's output into its log asynchronously, so a line written before /health answered
# may reach `docker logs` a moment after. The log is read whole before grep looks at it: piped
# into `grep -m1`, `docker logs` could die of SIGPIPE once grep has its line, and pipefail
# would then report the line as missing.
log_line() {
  local logs
  for _ in $(seq 40); do
    logs=$(docker logs "$1" 2>&1) && grep -m1 -F "$2" <<<"$logs" && return 0
    sleep 0.25
  done
  return 1
}
EMULATOR_PID=
cleanup() {
  docker rm -f "$NAME" "$NAME-vertex" >/dev/null 2>&1 || true
  [ -z "$EMULATOR_PID" ] || kill "$EMULATOR_PID" 2>/dev/null || true
}
trap cleanup EXIT

[ -f "$ENGINE_SCRIPT" ] || fail "no Docker engine script at $ENGINE_SCRIPT"
bash "$ENGINE_SCRIPT" || fail "the Docker engine could not be brought up ($ENGINE_SCRIPT)"
PYTHON=$(command -v python)  # the project's (CI's virtual environment), before PATH changes
export PATH=/usr/bin:$PATH  # Debian's docker client, as the engine script uses

echo "== build"
started=$(date +%s)
docker build -q -f docker/Dockerfile -t "$IMAGE" . >/dev/null || fail "docker build failed"
size_mb=$(( $(docker image inspect -f '{{.Size}}' "$IMAGE") / 1000000 ))
echo "built in $(( $(date +%s) - started ))s, image size ${size_mb} MB"

echo "== run on PORT=$PORT, limited to one CPU (--cpus 1, a CPU quota as Kubernetes sets)"
docker run -d --name "$NAME" --cpus 1 -e PORT=$PORT -p 127.0.0.1:$PORT:$PORT "$IMAGE" >/dev/null \
  || fail "docker run failed"
for _ in $(seq 120); do
  curl -fs "http://127.0.0.1:$PORT/health" >/dev/null && break
  sleep 0.5
done
health=$(curl -fs "http://127.0.0.1:$PORT/health") \
  || fail "/health never answered: $(docker logs "$NAME" 2>&1 | tail -5)"
echo "health: $health"
# The quota, not the host's CPUs that affinity still shows, sets the model's threads.
loaded=$(log_line "$NAME" "loaded model") || fail "no 'loaded model' line in the log"
echo "$loaded"
case "$loaded" in *" on 1 thread"*) ;; *) fail "under --cpus 1 the model should run on 1 thread" ;; esac

echo "== predict"
# The first photo by a glob, not `ls | head`: under pipefail, ls killed by SIGPIPE once head
# has its line failed this step now and then (its listing outgrows one pipe write).
first_photo() { local photos=("$DATA_DIR"/test/"$1"/*.jpg); [ -f "${photos[0]}" ] && echo "${photos[0]}"; }
photo=$(first_photo 1black) || fail "no test photo under $DATA_DIR/test/1black"
answer=$(curl -fs -F "image=@$photo" "http://127.0.0.1:$PORT/predict") || fail "/predict failed"
echo "$photo -> $answer"
label=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["label"])' "$answer")
[ "$label" = "black" ] || fail "expected black, got $label"

echo "== user"
uid=$(docker exec "$NAME" sh -c 'id -u') || fail "docker exec failed"
pid1_user=$(docker exec "$NAME" sh -c 'stat -c %u /proc/1')
[ "$uid" != 0 ] && [ "$pid1_user" != 0 ] || fail "the server runs as root (uid $uid, pid 1 owned by $pid1_user)"
echo "server runs as uid $pid1_user"

echo "== docker stop"
started=$(date +%s.%N)
docker stop -t 10 "$NAME" >/dev/null || fail "docker stop failed"
elapsed=$(python3 -c "print(round($(date +%s.%N) - $started, 2))")
code=$(docker inspect -f '{{.State.ExitCode}}' "$NAME")
echo "stopped in ${elapsed}s with exit code $code"
python3 -c "import sys; sys.exit(0 if $elapsed < 10 else 1)" || fail "stop took ${elapsed}s (limit 10s)"
[ "$code" = 0 ] || fail "exit code $code after SIGTERM (expected 0: a clean shutdown)"

echo "== Vertex AI: model from AIP_STORAGE_URI, a batch prediction request"
GCS_PORT=18094
"$PYTHON" -m gcp_storage_emulator start --host 127.0.0.1 --port $GCS_PORT -M -q >/dev/null 2>&1 &
EMULATOR_PID=$!
export STORAGE_EMULATOR_HOST=http://127.0.0.1:$GCS_PORT NO_GCE_CHECK=true
"$PYTHON" - <<'PY' || fail "could not put the model into the storage emulator"
import time
from pathlib import Path
from google.cloud import storage
from service.storage import upload_folder
for _ in range(100):
    try:
        storage.Client().create_bucket("vertex-models")
        break
    except Exception:
        time.sleep(0.1)
upload_folder(Path("models/mugs"), "gs://vertex-models/mugs/1")
PY
ROUTE=/v1/endpoints/1/deployedModels/2:predict
docker run -d --name "$NAME-vertex" --network host -e AIP_HTTP_PORT=$PORT \
  -e AIP_STORAGE_URI=gs://vertex-models/mugs/1 -e AIP_PREDICT_ROUTE=$ROUTE \
  -e AIP_HEALTH_ROUTE=/v1/endpoints/1/deployedModels/2 \
  -e STORAGE_EMULATOR_HOST -e NO_GCE_CHECK -e GCE_METADATA_HOST=127.0.0.1:9 "$IMAGE" >/dev/null \
  || fail "docker run (Vertex AI) failed"
for _ in $(seq 120); do
  curl -fs "http://127.0.0.1:$PORT/v1/endpoints/1/deployedModels/2" >/dev/null && break
  sleep 0.5
done
# A JSONL input of {"b64": ...} lines reaches the container as {"instances": [line, ...]}.
body=$(python3 -c 'import base64, json, sys; print(json.dumps({"instances": [{"b64": base64.b64encode(open(p, "rb").read()).decode()} for p in sys.argv[1:]]}))' \
  "$(first_photo 0white)" "$photo")
answer=$(curl -fs -H 'content-type: application/json' -d "$body" "http://127.0.0.1:$PORT$ROUTE") \
  || fail "the Vertex AI predict route failed: $(docker logs "$NAME-vertex" 2>&1 | tail -5)"
echo "batch prediction request -> $answer"
classes=$(python3 -c 'import json, sys; print([p["classes"] for p in json.loads(sys.argv[1])["predictions"]])' "$answer")
[ "$classes" = "[0, 1]" ] || fail "expected classes [0, 1] (white, black), got $classes"
# Without a quota, every CPU the container may use runs the model.
loaded=$(log_line "$NAME-vertex" "loaded model") || fail "no 'loaded model' line"
case "$loaded" in *" on $(nproc) thread"*) ;; *) fail "expected the model on $(nproc) threads: $loaded" ;; esac

echo "docker smoke test: 6 passed, 0 failed"
