#!/bin/sh
# test_gpu_cli.sh - the GPU side of the memsnap CLI: snapshot --gpu/--no-gpu/--device, info,
# gpu ps, bench --gpu, against the fake libnvidia-ml.so.1, a fake nvidia-smi and the DRM fixtures.
# Needs MEMSNAP_BIN, MEMSNAP_FIXTURES, MEMSNAP_FAKE_NVML_DIR, MEMSNAP_FAKE_NVSMI_SCRIPT.
bin=$MEMSNAP_BIN
fx=$MEMSNAP_FIXTURES
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
# check NAME PATTERN FILE: FILE contains PATTERN (grep -E)
check() { if grep -Eq -- "$2" "$3"; then ok; else bad "$1: no '$2' in:"; cat "$3"; fi; }
# absent NAME PATTERN FILE: FILE does not contain PATTERN
absent() { if grep -Eq -- "$2" "$3"; then bad "$1: unexpected '$2'"; else ok; fi; }
# jsonq NAME FILE EXPR: FILE parses as JSON and the Python expression EXPR over it (d) holds
jsonq() {
    if python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if eval(sys.argv[2]) else 1)' "$2" "$3" 2>/dev/null; then ok; else bad "$1: not ($3) in:"; cat "$2"; fi
}
# status NAME WANT GOT
status() { if [ "$2" = "$3" ]; then ok; else bad "$1: exit status $3, expected $2"; fi; }

nvml() { env LD_LIBRARY_PATH="$MEMSNAP_FAKE_NVML_DIR" MEMSNAP_SYSFS="$fx/gpu-none/sys" "$@"; }
nogpu() { env LD_LIBRARY_PATH= PATH=/nonexistent MEMSNAP_SYSFS="$fx/gpu-none/sys" "$@"; }

# --- with the fake NVML -------------------------------------------------------------------
nvml "$bin" gpu ps > "$tmp/ps" 2>&1; status "gpu ps" 0 $?
check "gpu ps header" "gpu 0  Fake H100  \(nvml\)  \[per-process\]" "$tmp/ps"
check "gpu ps table header" "PID +GPU MEMORY +PROCESS" "$tmp/ps"
check "gpu ps own row (the fake lists its caller with 1 GiB)" " 1.00 GiB +memsnap$" "$tmp/ps"
check "gpu ps MPS client" " 4242 +512.00 MiB" "$tmp/ps"
nvml "$bin" gpu ps --format json > "$tmp/ps.json" 2>&1; status "gpu ps json" 0 $?
jsonq "gpu ps json: largest process first" "$tmp/ps.json" \
    '(lambda p: (p["pid"], p["used_bytes"]))(d["gpus"][0]["processes"][0]) == (1, 3221225472)'
jsonq "gpu ps json: three GPUs, the caller on gpu 0" "$tmp/ps.json" \
    'len(d["gpus"]) == 3 and any(p["name"] == "memsnap" and p["used_bytes"] == 1 << 30 for p in d["gpus"][0]["processes"])'

nvml "$bin" snapshot --format json > "$tmp/snap.json"; status "snapshot" 0 $?
jsonq "snapshot has gpus by default" "$tmp/snap.json" \
    '[(g["index"], g["backend"], g["name"]) for g in d["gpus"]][0] == (0, "nvml", "Fake H100")'
jsonq "snapshot own process" "$tmp/snap.json" \
    'd["gpus"][0]["process_used_bytes"] == 1 << 30 and d["gpus"][0]["is_per_process"] is True'
nvml "$bin" snapshot --no-gpu --format json > "$tmp/nogpu.json"; status "snapshot --no-gpu" 0 $?
jsonq "--no-gpu leaves gpus out" "$tmp/nogpu.json" '"gpus" not in d'
nvml "$bin" snapshot --gpu > "$tmp/snap.txt"; status "snapshot --gpu" 0 $?
check "text gpu block" "^gpu 1 Fake A100 \(nvml\) \[per-process\]" "$tmp/snap.txt"
nvml "$bin" snapshot --gpu --format csv > "$tmp/snap.csv"; status "snapshot csv" 0 $?
check "csv gpu columns" "gpu0.total_bytes" "$tmp/snap.csv"
nvml "$bin" diff "$tmp/snap.json" "$tmp/snap.json" > "$tmp/diff" 2>&1; status "diff" 0 $?
check "diff VRAM" "VRAM gpu0 \[per-process\]" "$tmp/diff"

# --device: one GPU, by index (as gpu ps lists them), UUID or PCI bus id
nvml "$bin" snapshot --device 1 --format json > "$tmp/dev.json"; status "snapshot --device 1" 0 $?
jsonq "--device 1: only GPU 1, with its index" "$tmp/dev.json" \
    '[(g["index"], g["name"]) for g in d["gpus"]] == [(1, "Fake A100")]'
nvml "$bin" snapshot --device GPU-fake-0002 --format json > "$tmp/dev.json"
status "snapshot --device UUID" 0 $?
jsonq "--device UUID: only that GPU" "$tmp/dev.json" \
    '[(g["index"], g["uuid"]) for g in d["gpus"]] == [(2, "GPU-fake-0002")]'
nvml "$bin" snapshot --device 00000000:01:00.0 > "$tmp/dev.txt"; status "snapshot --device PCI" 0 $?
check "--device PCI bus id: GPU 0 in text" "^gpu 0 Fake H100" "$tmp/dev.txt"
absent "--device PCI bus id: no other GPU" "^gpu [12] " "$tmp/dev.txt"
nvml "$bin" snapshot --device 3 > "$tmp/out" 2> "$tmp/err"; status "snapshot --device 3" 1 $?
check "--device 3 names the GPUs there are" \
    "^memsnap snapshot: no GPU 3: 3 GPUs found \(index 0 to 2, or a UUID\)$" "$tmp/err"
if [ ! -s "$tmp/out" ] && [ "$(wc -l < "$tmp/err")" -eq 1 ]; then ok; else bad "--device 3: output or a second line"; cat "$tmp/out" "$tmp/err"; fi
nvml "$bin" snapshot --device 1 --no-gpu > "$tmp/out" 2> "$tmp/err"
status "--device with --no-gpu" 2 $?
check "--device with --no-gpu" "exclude each other" "$tmp/err"

nvml "$bin" info > "$tmp/info" 2>&1; status "info" 0 $?
check "info nvml" "nvml +yes +3 devices" "$tmp/info"
check "info versions" "driver 555.42.06, CUDA 12.5" "$tmp/info"
check "info capabilities" "device total yes, device free yes, per-process yes" "$tmp/info"
check "info device" "0 +Fake H100 \(nvml\) 80.00 GiB \[per-process\]" "$tmp/info"

nvml "$bin" bench snapshot --gpu --rounds 1 --json > "$tmp/bench" 2>&1
status "bench --gpu" 0 $?
jsonq "bench gpu_ns" "$tmp/bench" 'd["gpu_ns"] > 0'
jsonq "bench init_per_call_ns" "$tmp/bench" 'd["init_per_call_ns"] > 0'

# --- without any GPU ------------------------------------------------------------------------
nogpu "$bin" snapshot --gpu > "$tmp/out" 2> "$tmp/err"; st=$?
if [ $st -ne 0 ]; then ok; else bad "snapshot --gpu without GPU succeeded"; fi
if [ "$(wc -l < "$tmp/err")" -eq 1 ]; then ok; else bad "snapshot --gpu error is not one line"; cat "$tmp/err"; fi
check "why no GPU" "no GPU backend is available" "$tmp/err"
nogpu "$bin" snapshot --device 0 > "$tmp/out" 2> "$tmp/err"; status "--device without GPU" 1 $?
check "--device without GPU" "^memsnap snapshot: --device: no GPU backend is available" "$tmp/err"
nogpu "$bin" snapshot --format json > "$tmp/out"; status "snapshot without GPU" 0 $?
jsonq "an empty gpus list without a GPU" "$tmp/out" 'd["gpus"] == []'
nogpu "$bin" info > "$tmp/info" 2>&1; status "info without GPU" 0 $?
check "info explains nvml" "nvml +no +libnvidia-ml.so.1 cannot be loaded" "$tmp/info"
check "info explains nvidia-smi" "nvidia-smi +no +nvidia-smi not found on PATH" "$tmp/info"
nogpu "$bin" gpu ps > "$tmp/out" 2> "$tmp/err"; st=$?
if [ $st -ne 0 ]; then ok; else bad "gpu ps without GPU succeeded"; fi
nogpu "$bin" gpu nonsense > "$tmp/out" 2>&1; status "gpu nonsense" 2 $?

# --- nvidia-smi fallback ----------------------------------------------------------------------
mkdir "$tmp/bin"
printf '#!/bin/sh\nexec sh "%s" "$@"\n' "$MEMSNAP_FAKE_NVSMI_SCRIPT" > "$tmp/bin/nvidia-smi"
chmod 755 "$tmp/bin/nvidia-smi"
env LD_LIBRARY_PATH= MEMSNAP_GPU_BACKENDS=nvidia-smi PATH="$tmp/bin:/usr/bin:/bin" \
    MEMSNAP_SYSFS="$fx/gpu-none/sys" "$bin" gpu ps > "$tmp/smi" 2>&1; status "gpu ps nvidia-smi" 0 $?
check "nvidia-smi device" "gpu 0  Fake Smi A100  \(nvidia-smi\)  \[per-process\]" "$tmp/smi"
check "nvidia-smi N/A is device-wide" "gpu 1  Fake Smi T4  \(nvidia-smi\)  \[device-wide\]" "$tmp/smi"

# --- DRM fixtures -----------------------------------------------------------------------------
MEMSNAP_GPU_BACKENDS=drm "$bin" gpu ps --procfs "$fx/gpu-amdgpu/proc" --sysfs "$fx/gpu-amdgpu/sys" \
    > "$tmp/drm" 2>&1; status "gpu ps amdgpu" 0 $?
check "amdgpu device" "gpu 0  AMD Radeon RX 6800  \(drm\)  \[per-process\]  2.00 GiB / 15.98 GiB" "$tmp/drm"
check "amdgpu process" " 100 +768.00 MiB +game" "$tmp/drm"
MEMSNAP_GPU_BACKENDS=drm "$bin" gpu ps --procfs "$fx/gpu-i915/proc" --sysfs "$fx/gpu-i915/sys" \
    > "$tmp/drm" 2>&1; status "gpu ps i915" 0 $?
check "i915: no device total" "\(i915\)  \(drm\)  \[per-process\]  \? / \?" "$tmp/drm"
check "i915 process" " 300 +64.00 MiB" "$tmp/drm"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
