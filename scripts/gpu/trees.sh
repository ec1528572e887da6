# Sourced by the lent-machine pack scripts (cutter-run.sh, stream-run.sh): make_trees builds their three
# trees under $W and sets TREES: the Rust docs (from $SH/rdoc.tar.xz), with MIXED=1 a mixed tree of that
# machine's /usr/share/doc, /usr/lib/python3* and /usr/include, and big = $BIG permuted copies of the
# Rust-doc tar (gen_big.py: compresses like it, shares no chunk); then says each tree's size and file
# count and reads it once into the page cache. Needs W, SH, BIG, MIXED and R (the checkout's root).
make_trees() {
  tar xJf "$SH/rdoc.tar.xz" -C $W/t
  TREES="$W/t/rdoc"
  if [ "$MIXED" = 1 ]; then
    cp -a /usr/share/doc $W/src/doc; cp -a /usr/lib/python3* $W/src/ 2>/dev/null; cp -a /usr/include $W/src/
    TREES="$TREES $W/src"
  fi
  tar cf $W/rdoc.tar -C $W/t/rdoc .
  python3 "$R/scripts/gpu/gen_big.py" $W/rdoc.tar $W/big "$BIG"; rm -f $W/rdoc.tar
  TREES="$TREES $W/big"
  for t in $TREES; do echo "tree $t: $(du -sb --apparent-size $t | cut -f1) bytes, $(find $t -type f | wc -l) files"; tar cf - -C $t . >/dev/null; done
}
