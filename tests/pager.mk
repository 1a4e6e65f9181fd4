# Tests of the pager (--enable-uffd builds).
