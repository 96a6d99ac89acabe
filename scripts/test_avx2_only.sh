#!/usr/bin/env bash
# Run the test suite as an AVX2-only CPU (AMD EPYC Zen 2/3) would, on a machine with AVX-512/AMX.
# Not part of CI; see docs/testing.md "The suite on AVX2-only kernels" for what it can and cannot force.
#
#   scripts/test_avx2_only.sh                 every test folder, one pytest per folder, in turn
#   scripts/test_avx2_only.sh tests/engines   some folders or files (pytest arguments after them)
#   AVX2_ENV_ONLY=1 . scripts/test_avx2_only.sh   only export the variables into this shell
#
# Logs: $AVX2_LOGS (default /tmp/wordsight-avx2), one per folder, and summary.txt.
set -uo pipefail

# /proc/cpuinfo flags of an AMD EPYC 7763 (Zen 3) virtual machine: AVX2, FMA, F16C, BMI, VAES;
# no avx512*, no amx*, no avx512_bf16, no VNNI (neither avx512_vnni nor avx_vnni).
ZEN3_FLAGS="fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht
syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl tsc_reliable nonstop_tsc cpuid extd_apicid
aperfmperf pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt aes xsave avx f16c rdrand hypervisor
lahf_lm cmp_legacy cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw topoext invpcid_single vmmcall fsgsbase bmi1
avx2 smep bmi2 erms invpcid rdseed adx smap clflushopt clwb sha_ni xsaveopt xsavec xgetbv1 xsaves clzero xsaveerptr
rdpru arat npt nrip_save umip vaes vpclmulqdq rdpid fsrm"
export WORDSIGHT_CPU_FLAGS="${WORDSIGHT_CPU_FLAGS_AVX2:-$(echo $ZEN3_FLAGS)}"  # wordsight's own decisions
export ATEN_CPU_CAPABILITY=avx2                       # torch's ATen kernels
export ONEDNN_MAX_CPU_ISA=AVX2 DNNL_MAX_CPU_ISA=AVX2  # oneDNN in torch and in OpenVINO (partly: see the docs)
export MKL_ENABLE_INSTRUCTIONS=AVX2                   # torch's BLAS (MKL)
export OPENBLAS_CORETYPE=Haswell                      # numpy's and scipy's OpenBLAS
export NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL AVX512_SPR"  # numpy's own dispatched loops (numpy >= 2.4 names)
export FAISS_SIMD_LEVEL=AVX2                          # faiss's dynamic dispatch
# ONNX Runtime (MLAS) has no such switch: it keeps its AVX-512/VNNI/AMX kernels on this machine.

if [ -n "${AVX2_ENV_ONLY:-}" ]; then
  return 0 2>/dev/null || exit 0
fi

cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
LOGS=${AVX2_LOGS:-/tmp/wordsight-avx2}
mkdir -p "$LOGS"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
targets=()
rest=()
for a in "$@"; do
  if [ ${#rest[@]} -eq 0 ] && [ -e "${a%%::*}" ]; then targets+=("$a"); else rest+=("$a"); fi
done
if [ ${#targets[@]} -eq 0 ]; then
  targets=(tests/*/ tests/test_*.py)
fi
"$PY" - <<'EOF' | tee "$LOGS/summary.txt"
import os

import torch
from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

print("torch ATen:", torch.backends.cpu.get_cpu_capability(),
      "| numpy dispatch targets on:", [k for k in __cpu_dispatch__ if __cpu_features__.get(k)])
print("claimed in $WORDSIGHT_CPU_FLAGS:",
      [f for f in os.environ["WORDSIGHT_CPU_FLAGS"].split() if f.startswith(("avx512", "amx")) or "vnni" in f])
EOF
status=0
for t in "${targets[@]}"; do
  name=$(echo "${t%/}" | tr '/:' '__')
  # one pytest at a time, each folder in its own process: a crash (abort) names its folder
  timeout "${AVX2_TIMEOUT:-1800}" nice "$PY" -m pytest "$t" -p no:cacheprovider -rfEs \
    -o faulthandler_timeout=600 "${rest[@]}" >"$LOGS/$name.log" 2>&1
  rc=$?
  [ $rc -ne 0 ] && status=1
  echo "$t rc=$rc $(grep -E '(passed|failed|error|skipped|deselected)( |,|$)' "$LOGS/$name.log" | tail -n 1)" | tee -a "$LOGS/summary.txt"
done
exit $status
