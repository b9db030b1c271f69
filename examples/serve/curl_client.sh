#!/usr/bin/env bash
# A curl client of `holysheep serve`: a reply, a stream, the models of a key.
#
#   HOLYSHEEP_PROXY_URL=http://127.0.0.1:8080/v1 HOLYSHEEP_VIRTUAL_KEY=hsv-... \
#     ./curl_client.sh
set -euo pipefail
URL="${HOLYSHEEP_PROXY_URL:-http://127.0.0.1:8080/v1}"
KEY="${HOLYSHEEP_VIRTUAL_KEY:?set HOLYSHEEP_VIRTUAL_KEY (make one with: holysheep serve-key NAME)}"
MODEL="${HOLYSHEEP_MODEL:-smart}"

echo "== models this key can call"
curl -sS "$URL/models" -H "Authorization: Bearer $KEY"
echo

echo "== one reply (response headers name the route that served)"
curl -sS -i "$URL/chat/completions" \
  -H "Authorization: Bearer $KEY" -H "Content-Type: application/json" \
  -d "{\"model\": \"$MODEL\", \"messages\": [{\"role\": \"user\", \"content\": \"hello there\"}]}"
echo

echo "== a stream (server-sent events, ends with data: [DONE])"
curl -sS -N "$URL/chat/completions" \
  -H "Authorization: Bearer $KEY" -H "Content-Type: application/json" \
  -d "{\"model\": \"$MODEL\", \"stream\": true, \"messages\": [{\"role\": \"user\", \"content\": \"hello there\"}]}"
