#!/bin/sh
# Lines of src/*.rs outside tests: each file up to its `#[cfg(test)]`.
for f in "${1:-src}"/*.rs; do awk '/#\[cfg\(test\)\]/{exit} {n++} END{print n+0, FILENAME}' "$f"; done | sort -n | awk '{s+=$1; print} END{print s, "total"}'
