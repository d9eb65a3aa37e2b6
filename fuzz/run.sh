#!/usr/bin/env bash
# Runs fuzz targets one after another, one job each (see README.md).
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
# Corpora grow in fuzz/corpus/<target> (seeded from fuzz/seeds/<target>), crashes land in
# fuzz/artifacts/<target>, libFuzzer's output in fuzz/logs/<target>.log.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-480}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(record_decoder event_decoder segment_scanner bundle_importer checkpoint_loader)
mkdir -p logs
for t in "${targets[@]}"; do
  case $t in
    record_decoder|event_decoder) max_len=4096 ;;
    *) max_len=16384 ;;
  esac
  mkdir -p "corpus/$t" "artifacts/$t"
  # -O -a: optimised, with debug assertions and overflow checks (as `cargo test` builds).
  # The malloc limit: no single allocation may reach 32 MiB, twice the largest buffer
  # any decoder needs by design (RECORD_PAYLOAD_BYTES_MAX = 16 MiB, the codec's decode
  # limit; bundle headers are at most 1 MiB; a checkpoint is bounded by its file, here
  # at most max_len bytes).
  (cd logs && cargo +nightly fuzz run --fuzz-dir .. -O -a "$t" "../corpus/$t" "../seeds/$t" -- \
      -jobs=1 -workers=1 -max_total_time="$secs" -timeout=10 \
      -rss_limit_mb=2048 -malloc_limit_mb=32 -max_len="$max_len" \
      -artifact_prefix="../artifacts/$t/" -print_final_stats=1 >"$t.out" 2>&1 || true)
  mv -f logs/fuzz-0.log "logs/$t.log" 2>/dev/null || true
  echo "$t: $(grep -E '^stat::number_of_executed_units|^Done|DONE' "logs/$t.log" | tail -2 | tr '\n' ' ')"
done
