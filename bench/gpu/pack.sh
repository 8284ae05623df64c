#!/bin/bash
# Prepare issue 16's GPU measurement (bench/gpu/measure.sh) here, before the first call to a lent
# machine, which has no Node.js and no internet (../shared/GPU.md): the production node_modules of
# this tree's package-lock.json and this machine's node binary, into .gpu/ (git-ignored through
# the exclude file). The device tool sends the working tree itself; with these two and .gl (the
# Vulkan loader debs, as the device tool's README says) it must stay under its 64 MiB: about
# 28 + 24 MB here, plus the tree's 13 MB. Then `run` measure.sh with carry [".gpu", ".gl"].
set -eu
ROOT=$(git rev-parse --show-toplevel); cd "$ROOT"
EXCLUDE=$(git rev-parse --git-common-dir)/info/exclude
grep -qx '/.gpu/' "$EXCLUDE" 2>/dev/null || echo /.gpu/ >> "$EXCLUDE"
mkdir -p .gpu
# The production dependencies as installed here (built for this Node; a nested package goes with
# its parent), without other platforms' onnxruntime binaries, build leftovers, types and maps.
NM=$(cd "$(git rev-parse --git-common-dir)/.." && pwd)
(cd "$NM" && npm ls --omit=dev --all --parseable 2>/dev/null | sed "s|^$NM/||" | grep '^node_modules/' | sort -u \
  | awk '{ for (i = 1; i <= n; i++) if (index($0, kept[i] "/") == 1) next; kept[++n] = $0; print }' > /tmp/gpu-deps.txt
 tar -cf - --exclude='node_modules/onnxruntime-node/bin/napi-v6/darwin' --exclude='node_modules/onnxruntime-node/bin/napi-v6/win32' \
   --exclude='node_modules/onnxruntime-node/bin/napi-v6/linux/arm64' --exclude=node_modules/better-sqlite3/deps \
   --exclude='node_modules/better-sqlite3/build/Release/obj*' --exclude='*.map' --exclude='*.d.ts' -T /tmp/gpu-deps.txt) \
  | xz -T2 -6 > .gpu/node_modules.tar.xz
rm -rf /tmp/nodebin && mkdir -p /tmp/nodebin/node/bin && cp "$(command -v node)" /tmp/nodebin/node/bin/
tar -cf - -C /tmp/nodebin node | xz -T2 -6 > .gpu/node.tar.xz
rm -f .gpu/app.tar.xz
ls -la .gpu
