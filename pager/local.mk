# pager/: the userfaultfd page supplier, built by ./configure --enable-uffd.
# Its objects join the allocator's convenience library, so the installed
# library and every test program get the pager.
if ENABLE_UFFD
noinst_LTLIBRARIES += pager/libhakmem_pager.la
pager_libhakmem_pager_la_SOURCES = \
	pager/hooks.c \
	pager/internal.h \
	pager/loop.c \
	pager/pager.c \
	pager/pager.h \
	pager/pool.c \
	pager/pool.h \
	pager/readahead.c \
	pager/readahead.h \
	pager/ring.c \
	pager/ring.h \
	pager/stash.c \
	pager/stash.h \
	pager/supply.c \
	pager/supply.h \
	pager/uffd.c \
	pager/uffd.h \
	pager/workers.c \
	pager/workers.h
pager_libhakmem_pager_la_CFLAGS = $(AM_CFLAGS) $(HAKMEM_CFLAGS) $(LIBURING_CFLAGS)
lib_libhakmem_core_la_LIBADD += pager/libhakmem_pager.la
endif
