#!/bin/bash
# Prepare issue 16's GPU measurement (bench/gpu/measure.sh) here, before the first call to a lent
# machine, which has no Node.js and no internet (../shared/GPU.md): a production install of the
# committed tree and this machine's node binary, into .gpu/ (git-ignored through
# .git/info/exclude). Then run measure.sh there with carry [".gpu", ".gl"] (.gl: the Vulkan
# loader debs, as the device tool's README says).
set -eu
ROOT=$(git rev-parse --show-toplevel); cd "$ROOT"
EXCLUDE=$(git rev-parse --git-common-dir)/info/exclude
grep -qx '/.gpu/' "$EXCLUDE" 2>/dev/null || echo /.gpu/ >> "$EXCLUDE"
mkdir -p .gpu
rm -rf /tmp/gpuapp && mkdir /tmp/gpuapp && git archive HEAD | tar -x -C /tmp/gpuapp
(cd /tmp/gpuapp && ONNXRUNTIME_NODE_INSTALL=skip ELECTRON_SKIP_BINARY_DOWNLOAD=1 npm install --omit=dev --no-audit --no-fund)
rm -rf /tmp/gpuapp/node_modules/onnxruntime-node/bin/napi-v6/{darwin,win32,linux/arm64}
tar -cf - -C /tmp/gpuapp --exclude=node_modules/better-sqlite3/deps \
  --exclude='node_modules/better-sqlite3/build/Release/obj*' . | xz -T2 -6 > .gpu/app.tar.xz
rm -rf /tmp/nodebin && mkdir -p /tmp/nodebin/node/bin && cp "$(command -v node)" /tmp/nodebin/node/bin/
tar -cf - -C /tmp/nodebin node | xz -T2 -6 > .gpu/node.tar.xz
ls -la .gpu
