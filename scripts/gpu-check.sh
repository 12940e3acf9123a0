#!/usr/bin/env bash
# GPU check: the CUDA build (scripts/cuda-build.sh, built when missing)
# trains ADA-SID and the hybrid retriever on Beauty on cuda:0 and on the
# CPU, evaluates both retrievers, and prints one JSON line: seconds per
# epoch on each device, the GPU's speed-up, and whether the GPU run's
# codebook utilisation and Recall@10 / NDCG@10 agree with the CPU run's
# within noise (utilisation within 0.05, retrieval within 15%: the two
# devices sum in different orders, so the runs are not bit-identical).
#
# Without an NVIDIA driver it prints {"gpu": false, "reason": ...} and
# exits 2. Epochs: ADA_EPOCHS (default 5), GEN_EPOCHS (default 2).
#
# Usage: scripts/gpu-check.sh [data folder, default ../shared/data/beauty]
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DATA="${1:-$ROOT/../shared/data/beauty}"
CACHE="${ADASID_CUDA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/adasid-cuda}"
BIN="${CARGO_TARGET_DIR:-$CACHE/target}/release/adasid"
ADA_EPOCHS="${ADA_EPOCHS:-5}"
GEN_EPOCHS="${GEN_EPOCHS:-2}"

[ -x "$BIN" ] || "$ROOT/scripts/cuda-build.sh" >&2
export LD_LIBRARY_PATH="$CACHE/toolkit/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# The GPU run goes first: a device that cannot be opened ends the check
# there, before anything was trained.
for device in cuda:0 cpu; do
  tag="${device%%:*}"
  if ! "$BIN" train --data "$DATA" --db "$WORK/$tag.db" --epochs "$ADA_EPOCHS" \
      --device "$device" --json > "$WORK/$tag-train.json" 2> "$WORK/$tag-train.err"; then
    if [ "$tag" = cuda ] && grep -q -- "--device cuda:0" "$WORK/$tag-train.err"; then
      # --json reports the error as {"error": {"message": ...}} on stderr.
      python3 - "$WORK/$tag-train.err" <<'PY'
import json, sys
text = open(sys.argv[1]).read().strip()
try:
    text = json.loads(text)["error"]["message"]
except (ValueError, KeyError, TypeError):
    pass
print(json.dumps({"gpu": False, "reason": text}))
PY
      exit 2
    fi
    cat "$WORK/$tag-train.err" >&2
    exit 1
  fi
  "$BIN" gen-train --retriever hybrid --db "$WORK/$tag.db" --data "$DATA" \
    --epochs "$GEN_EPOCHS" --device "$device" --json > "$WORK/$tag-gen.json"
  "$BIN" gen-eval --retriever hybrid --db "$WORK/$tag.db" --data "$DATA" \
    --device "$device" --json > "$WORK/$tag-eval.json"
done

python3 - "$WORK" <<'PY'
import json, sys
work = sys.argv[1]
def load(tag, part):
    with open(f"{work}/{tag}-{part}.json") as f:
        return json.load(f)
def epoch_seconds(run):
    return sum(e["seconds"] for e in run["history"]) / len(run["history"])
out = {"gpu": True}
runs = {}
for tag in ("cuda", "cpu"):
    train, gen, ev = load(tag, "train"), load(tag, "gen"), load(tag, "eval")
    util = train["quality"]["utilisation"]
    runs[tag] = {
        "adasid_epoch_s": epoch_seconds(train),
        "hybrid_epoch_s": epoch_seconds(gen),
        "utilisation": sum(util) / len(util),
        "recall10": ev["overall"]["recall"][1],
        "ndcg10": ev["overall"]["ndcg"][1],
    }
gpu, cpu = runs["cuda"], runs["cpu"]
out.update(runs)
out["adasid_speedup"] = cpu["adasid_epoch_s"] / gpu["adasid_epoch_s"]
out["hybrid_speedup"] = cpu["hybrid_epoch_s"] / gpu["hybrid_epoch_s"]
close = lambda a, b: abs(a - b) <= 0.15 * max(abs(b), 1e-9)
out["agree"] = {
    "utilisation": abs(gpu["utilisation"] - cpu["utilisation"]) <= 0.05,
    "recall10": close(gpu["recall10"], cpu["recall10"]),
    "ndcg10": close(gpu["ndcg10"], cpu["ndcg10"]),
}
print(json.dumps(out))
PY
