#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) and runs each for a
# bounded time with a seed corpus made from the good test files.
#   scripts/run-fuzz.sh [SECONDS_PER_TARGET]     (default 30; env BUILD_DIR)
# Exits non-zero when a target finds a crash; the reproducer is left in
# $BUILD_DIR/fuzz-artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-30}
B=${BUILD_DIR:-build-fuzz}

if [ ! -f "$B/build.ninja" ]; then
  CC=clang CXX=clang++ meson setup "$B" -Dfuzzing=true -Dcuda=disabled \
    -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
fi
ninja -C "$B" -j2 fuzz/fuzz-torchzip fuzz/fuzz-safetensors fuzz/fuzz-config

# Seeds: the torch.save fixtures, small safetensors files (one tensor of
# each dtype class, an empty header, metadata, a header nested 100,000 deep),
# and config.json files as published.  Inputs may reach 1 MiB (-max_len) so
# that deep nesting and long headers stay within the fuzzer's reach.
mkdir -p "$B/corpus-torchzip" "$B/corpus-safetensors" "$B/corpus-config" "$B/fuzz-artifacts"
cp tests/data/*.pth "$B/corpus-torchzip/"
st_seed () {  # st_seed NAME JSON DATA_BYTES
  local n=${#2}
  { printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x\\x00\\x00\\x00\\x00' \
      $((n & 255)) $(((n >> 8) & 255)) $(((n >> 16) & 255)) $(((n >> 24) & 255)))"
    printf '%s' "$2"; head -c "$3" /dev/zero; } > "$B/corpus-safetensors/$1"
}
st_seed empty '{}' 0
st_seed meta '{"__metadata__":{"format":"pt"}}' 0
st_seed f32 '{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}' 16
st_seed two '{"a":{"dtype":"BF16","shape":[4],"data_offsets":[0,8]},"b":{"dtype":"F8_E4M3","shape":[1,2,1,2,1],"data_offsets":[8,12]}}' 12
deep=$(head -c 100000 /dev/zero | tr '\0' '[')
st_seed deep "{\"a\":$deep" 0
printf '%s' '{"_class_name": "WanModel_S2V", "_diffusers_version": "0.35.1", "dim": 96, "ffn_dim": 192, "num_heads": 3, "num_layers": 3, "text_dim": 32, "audio_dim": 32, "text_len": 16, "cond_dim": 16, "audio_inject_layers": [0, 2], "enable_adain": true, "enable_framepack": true, "enable_motioner": false, "zero_timestep": true}' > "$B/corpus-config/dit.json"
printf '%s' '{"conv_bias": true, "conv_dim": [512, 512], "conv_kernel": [10, 3], "conv_stride": [5, 2], "do_stable_layer_norm": true, "feat_extract_norm": "layer", "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4, "num_conv_pos_embedding_groups": 4, "num_conv_pos_embeddings": 16, "num_hidden_layers": 2}' > "$B/corpus-config/w2v.json"
printf '%s%s' '{"id2label": ' "$deep" > "$B/corpus-config/deep.json"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
status=0
for t in torchzip safetensors config; do
  echo "== fuzz-$t for ${SECS}s"
  if ! "$B/fuzz/fuzz-$t" "$B/corpus-$t" -dict="fuzz/$t.dict" -max_total_time="$SECS" -max_len=1048576 \
      -artifact_prefix="$B/fuzz-artifacts/$t-" -print_final_stats=1 2>"$B/fuzz-$t.log"; then
    echo "fuzz-$t: FAILED (see $B/fuzz-$t.log and $B/fuzz-artifacts/)"
    tail -40 "$B/fuzz-$t.log"
    status=1
  else
    grep -E "stat::number_of_executed_units|cov:" "$B/fuzz-$t.log" | tail -2
  fi
done
exit $status
