# pager/: the userfaultfd page supplier, built by ./configure --enable-uffd.
# Its wiring only, until the pager lands: lib/ runs without it.
