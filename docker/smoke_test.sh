#!/usr/bin/env bash
# Builds the image and checks it as a user would run it: a non-default $PORT, /health, a real
# photo classified, a non-root process, and `docker stop` finishing within Cloud Run's
# 10-second grace. Brings up a Docker engine first with shared/tools/docker-engine.sh (root).
# Fails, saying why, if any step fails, including the engine not coming up.
set -euo pipefail
cd "$(dirname "$0")/.."

ENGINE_SCRIPT=${DOCKER_ENGINE_SCRIPT:-../shared/tools/docker-engine.sh}
DATA_DIR=${MUGS_DATA_DIR:-data}
IMAGE=mug-classifier:smoke
NAME=mug-classifier-smoke-$$
PORT=18093
fail() { echo "SMOKE TEST FAILED: $*" >&2; exit 1; }
cleanup() { docker rm -f "$NAME" >/dev/null 2>&1 || true; }
trap cleanup EXIT

[ -f "$ENGINE_SCRIPT" ] || fail "no Docker engine script at $ENGINE_SCRIPT"
bash "$ENGINE_SCRIPT" || fail "the Docker engine could not be brought up ($ENGINE_SCRIPT)"
export PATH=/usr/bin:$PATH  # Debian's docker client, as the engine script uses

echo "== build"
started=$(date +%s)
docker build -q -f docker/Dockerfile -t "$IMAGE" . >/dev/null || fail "docker build failed"
size_mb=$(( $(docker image inspect -f '{{.Size}}' "$IMAGE") / 1000000 ))
echo "built in $(( $(date +%s) - started ))s, image size ${size_mb} MB"

echo "== run on PORT=$PORT"
docker run -d --name "$NAME" -e PORT=$PORT -p 127.0.0.1:$PORT:$PORT "$IMAGE" >/dev/null \
  || fail "docker run failed"
for _ in $(seq 120); do
  curl -fs "http://127.0.0.1:$PORT/health" >/dev/null && break
  sleep 0.5
done
health=$(curl -fs "http://127.0.0.1:$PORT/health") \
  || fail "/health never answered: $(docker logs "$NAME" 2>&1 | tail -5)"
echo "health: $health"

echo "== predict"
photo=$(ls "$DATA_DIR"/test/1black/*.jpg | head -n 1) || fail "no test photo under $DATA_DIR/test/1black"
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

echo "docker smoke test: 5 passed, 0 failed"
