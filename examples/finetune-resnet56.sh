#!/usr/bin/env bash
# Fine-tune block-gated ResNet-56 models from the published CIFAR-10 checkpoint at three λ values.
#
# The script imports resnet56-4bfd9763.th as a baseline (measured on the CIFAR-10 test
# set), fills the baseline's id into examples/finetune-resnet56.json, submits that sweep
# and follows its runs until they finish. It needs a running GateLab stack whose data
# directory contains CIFAR-10 and the checkpoint, for example `gatelab up` in another
# terminal; GATELAB_API_URL selects the API.
#
# Each run trains on 5,000 CIFAR-10 training images for one epoch and is tested on a
# fixed 2,000 of the test images. On an idle 2-core AMD EPYC, with the stack
# already up, the import and the three runs took 52 s.
#
# Usage: examples/finetune-resnet56.sh [CHECKPOINT]
#   CHECKPOINT defaults to $GATELAB_DATA_DIR/pretrained/cifar-resnets/resnet56-4bfd9763.th.
#   GATELAB sets the gatelab command (default: gatelab on PATH, else .venv/bin/gatelab).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
default_checkpoint="${GATELAB_DATA_DIR:-}/pretrained/cifar-resnets/resnet56-4bfd9763.th"
checkpoint=${1:-$default_checkpoint}
if [[ ! -f "$checkpoint" ]]; then
    echo "error: checkpoint $checkpoint not found; pass its path or set GATELAB_DATA_DIR" >&2
    exit 2
fi
if [[ -n "${GATELAB:-}" ]]; then
    gatelab=$GATELAB
elif command -v gatelab >/dev/null; then
    gatelab=gatelab
else
    gatelab="$here/../.venv/bin/gatelab"
fi

sweep_file=$(mktemp --suffix .json)
trap 'rm -f "$sweep_file"' EXIT

started=$SECONDS
echo "importing $checkpoint as a baseline (measures 10,000 test images) ..."
baseline_id=$($gatelab baselines import "$checkpoint" --arch resnet56 --normalization imagenet \
    --test-dataset cifar10 --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["baseline"]["id"])')
$gatelab baselines show "$baseline_id"

python3 - "$here/finetune-resnet56.json" "$baseline_id" >"$sweep_file" <<'PYTHON'
import json
import sys

sweep = json.load(open(sys.argv[1]))
sweep["base"]["init"]["id"] = int(sys.argv[2])
json.dump(sweep, sys.stdout)
PYTHON

sweep_id=$($gatelab submit "$sweep_file" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
echo "sweep $sweep_id queued; following its runs ..."
$gatelab watch --sweep "$sweep_id"
echo "finished in $((SECONDS - started)) s; sweep page: /sweep?sweep=$sweep_id on the dashboard"
