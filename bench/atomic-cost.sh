#!/usr/bin/env bash
# What one atomic read-modify-write costs here, next to a plain add (see
# bench/lib/atomic_cost.c): the weight of `bench/instructions.sh --locked`'s
# count. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
gcc -O2 -o "$out/atomic_cost" bench/lib/atomic_cost.c
"$out/atomic_cost"
