#!/bin/bash
# Instructions per operation of the hot paths (issue 16), with callgrind: two runs of one script that
# differ only in the number of operations, and their difference divided by the difference in operations.
#   bench/callgrind/run.sh [PYTHONPATH]     (default: the checkout's python/; give another build's to compare)
# containers.py counts inside PyObject_GetItem/SetItem only (a ~211-instruction harness share is in every
# row); keyed.py and adds.py count whole loop iterations. Needs valgrind; takes ~15 minutes.
set -e
cd "$(dirname "$0")/../.."
PP=${1:-python}
PY=.venv/bin/python
export PYTHONHASHSEED=0 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 PYTHONPATH=$PP
ir() {  # ir FILE.out -> total instructions
  grep -m1 "^summary:" "$1" | awk '{print $2}'
}
count() {  # count SCRIPT WHAT N1 N2 OPS [callgrind options...]
  local script=$1 what=$2 n1=$3 n2=$4 ops=$5; shift 5
  local out=$(mktemp -d)
  valgrind -q --tool=callgrind "$@" --callgrind-out-file=$out/a "$PY" "bench/callgrind/$script" "$what" "$n1" 2>/dev/null
  valgrind -q --tool=callgrind "$@" --callgrind-out-file=$out/b "$PY" "bench/callgrind/$script" "$what" "$n2" 2>/dev/null
  echo "$script $what $(( ($(ir $out/b) - $(ir $out/a)) / ops )) Ir/op"
  rm -rf "$out"
}
for w in numpy static dyn keyed static_w dyn_w keyed_w; do
  count containers.py $w 20000 120000 100000 --toggle-collect=PyObject_GetItem --toggle-collect=PyObject_SetItem
done
for w in none dd tuple entry dd_w tuple_w entry_w; do count keyed.py $w 1 6 50000; done
for w in dict keyed add addst addkw; do count adds.py $w 1 3 10000; done
