#!/bin/bash
# Data-parallel training on a Cloud TPU VM slice: the same command on every worker; JAX finds
# the slice's other hosts itself. Run from a machine with gcloud, after creating the slice:
#
#   gcloud compute tpus tpu-vm create hdr-jax --zone=us-central2-b \
#     --accelerator-type=v4-32 --version=tpu-ubuntu2204-base
#   TPU=hdr-jax ZONE=us-central2-b DATA_DIR=gs://your-bucket/mnist-local-copy \
#     bash examples/cluster/tpu-vm.sh
#
# DATA_DIR must be a folder each worker can read as files (copy the IDX files there first).
set -euo pipefail
TPU=${TPU:?name of the TPU VM}
ZONE=${ZONE:?its zone}
DATA_DIR=${DATA_DIR:?folder of the four MNIST IDX files on every worker}
REPO=${REPO:-https://github.com/your-org/hdr-jax}

gcloud compute tpus tpu-vm ssh "$TPU" --zone="$ZONE" --worker=all --command="
  set -e
  test -d hdr-jax || git clone $REPO hdr-jax
  cd hdr-jax && pip install -q -e . 'jax[tpu]'
  python train.py --preset fast --batch-size 4096 --data-dir $DATA_DIR --workdir runs/tpu \
    --no-progress"
