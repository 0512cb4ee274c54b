#!/usr/bin/env bash
# The prepared device check: run on a machine with an NVIDIA GPU, from the repository root.
# Installs ember into a fresh venv, then runs the CUDA tests (FSDP on NCCL in bf16-mixed with a distributed
# checkpoint among them) and the DDP suite (which uses NCCL where two GPUs exist).
set -euo pipefail
python3 -m venv /tmp/ember-gpu && . /tmp/ember-gpu/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q torch  # the machine's own CUDA build
python -m pip install -q -e ".[test]"
nvidia-smi --query-gpu=name,memory.total --format=csv
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
python -m pytest tests/gpu tests/testing/test_syncs.py tests/plugins/test_device_stats_monitor.py tests/core/test_trainer_flags.py -q -rs
python bench/run.py --quick --no-lightning
