#!/bin/bash
# Before/after on one kernel index in one run, alternating two checkouts of agentls (BENCHMARKS.md,
# "Session 4: start-up costs removed"). Usage: OLD=DIR NEW=DIR K=KERNEL_TREE AGENTLS_CACHE_DIR=DIR bash THIS
# (OLD: e.g. `git archive b686b96 | tar -x -C DIR`; the index in AGENTLS_CACHE_DIR must exist). Edits
# lib/string_helpers.c of the tree and restores it.
: "${OLD:?}" "${NEW:?}" "${K:?}" "${AGENTLS_CACHE_DIR:?}"
export RUST_LOG=error
LOC=$(ls -d "$AGENTLS_CACHE_DIR"/index/"$(basename "$K")"-*)
run() { # label code-dir args...
  local label=$1 dir=$2; shift 2
  local out
  out=$( { cd $dir && PYTHONPATH=$dir /usr/bin/time -f "TIME %e wall %U user %S sys %M KB" python -m server.cli "$@" >/dev/null; } 2>&1 | grep TIME)
  echo "$label $* :: $out :: load $(cut -d' ' -f1 /proc/loadavg)"
}
uptime
echo "== search (new: first search starts the warm process)"
export AGENTLS_SEARCH_PROCESS=1
for i in 1 2 3; do
  run OLD "$OLD" search "struct task_struct" --path $K -k 10 --json
  run NEW "$NEW" search "struct task_struct" --path $K -k 10 --json
  sleep 2
done
echo "== unchanged index"
for i in 1 2; do
  run OLD "$OLD" index $K -q --json
  rm -f $LOC/files-state
  run NEW "$NEW" index $K -q --json   # rewrites the state
  run NEW "$NEW" index $K -q --json   # the fast path
done
echo "== one file edited, then index"
F=$K/lib/string_helpers.c
cp $F /tmp/scale_orig.c
for i in 1 2; do
  echo "/* old $i */" >> $F; run OLD "$OLD" index $K -q --json; rm -f $LOC/files-state
  echo "/* new $i */" >> $F; run NEW "$NEW" index $K -q --json
done
cp /tmp/scale_orig.c $F; touch $F
run NEW "$NEW" index $K -q --json
