#!/bin/bash
# Issue 16's measurements on a lent GPU machine, in one call (prepare with bench/gpu/pack.sh, then
# `run` with carry [".gpu", ".gl"] and the command `bash bench/gpu/measure.sh`, timeout ~560 s).
# Each case prints JSON lines, prefixed with its name, to $OUT/results.jsonl as it goes, so a run
# cut off still returns what it measured; $OUT/log.txt has the progress and $OUT/stderr.txt the
# benches' stderr. The engine on WebGPU (fp32, then mixed precision), the reference in PyTorch
# CUDA eager / transformers generate() / TRL's GRPOTrainer, the 0.5B-shaped LoRA TTRL step, the
# 1.5B-shaped one with its memory (nvidia-smi sampled every 0.5 s beside the engine's own
# figure), and onnxruntime's node profiles of the 0.5B LoRA step and decode. Back here,
# `npx tsx bench/gpu/table.ts DIR` writes the issue's table, ratios and acceptance from them.
#
# Every case has its own timeout; on an H200 the whole takes several minutes (the rehearsal
# below: 8 min on lavapipe), so within a 600 s call it may need ONLY (below) and a second call.
#
# DRY=1 OUT=DIR [PY=python] bash bench/gpu/measure.sh: a rehearsal here, on lavapipe, with small models
# (the reference on the CPU, fp32 only).
set -u
: "${OUT:?set OUT to a folder for the results}"
R=$OUT/results.jsonl; L=$OUT/log.txt
T0=$(date +%s)
ROOT=$PWD; G=$ROOT/.gpu; GB=$ROOT/bench/gpu; W=${W:-/tmp/w}
if [ -z "${DRY:-}" ]; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
# The working tree is here; its production node_modules and a node binary come from .gpu/.
mkdir -p $W && tar xJf $G/node.tar.xz -C $W
if [ -n "${DRY:-}" ]; then
  # A rehearsal must not replace this checkout's node_modules: a copy of the tree gets them.
  rm -rf $W/tree && mkdir -p $W/tree && git archive HEAD | tar -x -C $W/tree && cd $W/tree
fi
tar xJf $G/node_modules.tar.xz
export PATH=$W/node/bin:$PATH XDG_RUNTIME_DIR=/tmp/xdg
mkdir -p $XDG_RUNTIME_DIR && chmod 700 $XDG_RUNTIME_DIR
echo "setup $(( $(date +%s) - T0 )) s" >> $L
node bin/autodidact.js devices >> $L 2>&1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >> $L 2>&1
${PY:-python3} -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__, torch.cuda.is_available())' >> $L 2>&1
${PY:-python3} -c 'import trl, peft; print("trl", trl.__version__, "peft", peft.__version__)' >> $L 2>&1
E="node node_modules/tsx/dist/cli.mjs bench/index.ts"
P="${PY:-python3} bench/reference"  # PY: a Python with torch, transformers, trl and peft
M=/tmp/models; mkdir -p $M
if [ -z "${DRY:-}" ]; then
  $E make-model --name bench-256-32k --out $M/b32k >> $L 2>&1
  $E make-model --name q05 --out $M/q05 --hidden 896 --layers 24 --heads 14 --kv-heads 2 --intermediate 4864 --vocab 151936 >> $L 2>&1
  DEV=webgpu; RDEV=cuda
else
  $E make-model --out $M/b32k --hidden 64 --layers 1 --heads 4 --kv-heads 4 --intermediate 128 --vocab 2000 --untied >> $L 2>&1
  # Head size 16, as GroupQueryAttention needs to rotate and read the packed product (real models: 64, 128).
  $E make-model --out $M/q05 --hidden 224 --layers 2 --heads 14 --kv-heads 2 --intermediate 256 --vocab 3000 >> $L 2>&1
  DEV=webgpu; RDEV=cpu
fi
echo "models $(( $(date +%s) - T0 )) s" >> $L
# case_ NAME TIMEOUT command...: each JSON line the command prints, with "case": NAME first.
# ONLY=REGEX runs the cases whose names match (e.g. ONLY='ttrl|q15' when the lent time is short).
case_() { local name=$1 to=$2; shift 2; [[ -n "${ONLY:-}" && ! $name =~ $ONLY ]] && return; echo "== $name $(( $(date +%s) - T0 )) s" >> $L
  timeout $to "$@" 2>>$OUT/stderr.txt | grep '^{' | sed "s/^{/{\"case\":\"$name\",/" >> $R; echo "   rc ${PIPESTATUS[0]}" >> $L; }
# The table, fp32 then mixed precision, engine then reference.
for prec in fp32 mixed; do
  case_ e_b32k_train_$prec 90 $E train --model $M/b32k --batch 32 --seq 64 --steps 10 --warmup 3 --device $DEV --precision $prec
  case_ e_b32k_gen_$prec 90 $E generate --model $M/b32k --batch 64 --new-tokens 64 --device $DEV --precision $prec
  case_ e_q05_lora_$prec 120 $E train --model $M/q05 --batch 8 --seq 256 --steps 5 --warmup 2 --device $DEV --lora-rank 16 --precision $prec
  case_ e_q05_full_$prec 120 $E train --model $M/q05 --batch 8 --seq 256 --steps 5 --warmup 2 --device $DEV --precision $prec
  case_ e_q05_gen_$prec 120 $E generate --model $M/q05 --batch 64 --new-tokens 128 --prompt-len 64 --repeats 2 --warmup 1 --device $DEV --precision $prec
  # The same with q, k and v as three products (two more nodes per layer a decode step).
  case_ e_q05_gen_unpacked_$prec 120 env AUTODIDACT_PACK_QKV=0 $E generate --model $M/q05 --batch 64 --new-tokens 128 --prompt-len 64 --repeats 2 --warmup 1 --device $DEV --precision $prec
  case_ e_q05_ttrl_$prec 150 $E rl-step --model $M/q05 --prompts 4 --votes 16 --new-tokens 64 --steps 3 --warmup 1 --device $DEV --lora-rank 16 --precision $prec
  # The same with generation reading the adapters unmerged (four more nodes per linear layer a decode step).
  case_ e_q05_ttrl_unmerged_$prec 150 env AUTODIDACT_MERGE_ADAPTERS=0 $E rl-step --model $M/q05 --prompts 4 --votes 16 --new-tokens 64 --steps 3 --warmup 1 --device $DEV --lora-rank 16 --precision $prec
  # The linear layers' products of the 0.5B step one by one (each also as MatMul), beside PyTorch's: how much of the step's ratio is onnxruntime's matrix kernels.
  case_ e_q05_gemm_$prec 150 $E gemm --model $M/q05 --batch 8 --seq 256 --repeats 10 --warmup 3 --device $DEV --precision $prec
  [ -n "${DRY:-}" ] && [ $prec = mixed ] && continue  # the CPU reference has no fp16
  case_ r_b32k_train_$prec 90 $P/train_step.py --model $M/b32k --batch 32 --seq 64 --steps 10 --warmup 3 --device $RDEV --precision $prec
  case_ r_b32k_gen_$prec 90 $P/generate.py --model $M/b32k --batch 64 --new-tokens 64 --device $RDEV --precision $prec
  case_ r_q05_lora_$prec 90 $P/train_step.py --model $M/q05 --batch 8 --seq 256 --steps 5 --warmup 2 --device $RDEV --lora-rank 16 --precision $prec
  case_ r_q05_full_$prec 90 $P/train_step.py --model $M/q05 --batch 8 --seq 256 --steps 5 --warmup 2 --device $RDEV --precision $prec
  case_ r_q05_gen_$prec 90 $P/generate.py --model $M/q05 --batch 64 --new-tokens 128 --prompt-len 64 --repeats 2 --warmup 1 --device $RDEV --precision $prec
  case_ r_q05_gemm_$prec 90 $P/gemm.py --model $M/q05 --batch 8 --seq 256 --repeats 10 --warmup 3 --device $RDEV --precision $prec
  case_ r_q05_ttrl_$prec 150 $P/grpo_step.py --model $M/q05 --prompts 4 --votes 16 --new-tokens 64 --steps 3 --warmup 1 --device $RDEV --lora-rank 16 --precision $prec
done
# Where the time goes: onnxruntime's profiles of the 0.5B LoRA step and of decoding.
rm -rf /tmp/prof; mkdir -p /tmp/prof/lora /tmp/prof/gen
case_ p_q05_lora 90 env AUTODIDACT_PROFILE=/tmp/prof/lora/p $E train --model $M/q05 --batch 8 --seq 256 --steps 2 --warmup 1 --device $DEV --lora-rank 16
case_ p_q05_gen 90 env AUTODIDACT_PROFILE=/tmp/prof/gen/p $E generate --model $M/q05 --batch 64 --new-tokens 16 --prompt-len 64 --repeats 1 --warmup 0 --device $DEV
node $GB/profile-summary.mjs /tmp/prof/lora > $OUT/profile-q05-lora.json 2>>$L
node $GB/profile-summary.mjs /tmp/prof/gen > $OUT/profile-q05-gen.json 2>>$L
# Real-model scale: a Qwen2.5-1.5B-shaped LoRA TTRL step planned for 24 GB, with its memory.
if [ -z "${DRY:-}" ]; then
  $E make-model --name q15 --out $M/q15 --hidden 1536 --layers 28 --heads 12 --kv-heads 2 --intermediate 8960 --vocab 151936 >> $L 2>&1
else
  $E make-model --out $M/q15 --hidden 192 --layers 2 --heads 12 --kv-heads 2 --intermediate 256 --vocab 3000 >> $L 2>&1
fi
for prec in mixed fp32; do
  command -v nvidia-smi > /dev/null && { nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 500 > $OUT/nvidia-smi-q15-$prec.txt 2>&1 & SMI=$!; }
  case_ e_q15_ttrl_24g_$prec 200 env AUTODIDACT_GPU_MEMORY=24g $E rl-step --model $M/q15 --prompts 4 --votes 16 --new-tokens 64 --steps 2 --warmup 1 --device $DEV --lora-rank 16 --precision $prec
  [ -n "${SMI:-}" ] && kill $SMI
done
echo "done $(( $(date +%s) - T0 )) s" >> $L
