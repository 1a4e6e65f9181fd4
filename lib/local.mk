# lib/: the allocator. Its objects are built once, into a convenience
# library that both the installed library and the unit tests link.
noinst_LTLIBRARIES += lib/libhakmem_core.la
lib_libhakmem_core_la_SOURCES = \
	lib/api.c \
	lib/budget.h \
	lib/diag.c \
	lib/diag.h \
	lib/fd.c \
	lib/fd.h \
	lib/heap.c \
	lib/heap.h \
	lib/hot.h \
	lib/huge.c \
	lib/huge.h \
	lib/introspect.c \
	lib/large.c \
	lib/large.h \
	lib/lock.h \
	lib/lru.c \
	lib/lru.h \
	lib/options.c \
	lib/options.h \
	lib/os.c \
	lib/os.h \
	lib/pagemap.c \
	lib/pagemap.h \
	lib/region_map.c \
	lib/region_map.h \
	lib/size_class.c \
	lib/size_class.h \
	lib/slab.c \
	lib/slab.h \
	lib/stats.c \
	lib/stats.h \
	lib/superslab.c \
	lib/superslab.h \
	lib/tcache.h \
	lib/types.h \
	lib/zero.c \
	lib/zero.h
lib_libhakmem_core_la_CFLAGS = $(AM_CFLAGS) $(HAKMEM_CFLAGS)
lib_libhakmem_core_la_LIBADD =

# What links the allocator: its convenience library and, with the pager,
# liburing. libtool drops a static archive from a convenience library, so
# LIBURING_LINK (liburing.a when it can go into a shared library, see
# m4/hakmem_link_uring.m4) is named here, by each final link.
hakmem_core_ldadd = lib/libhakmem_core.la $(LIBURING_LINK)

lib_LTLIBRARIES += lib/libhakmem.la
lib_libhakmem_la_SOURCES =
lib_libhakmem_la_LIBADD = $(hakmem_core_ldadd) $(PTHREAD_LIBS)
lib_libhakmem_la_LDFLAGS = -version-info 0:0:0 -no-undefined \
	-Wl,--version-script=$(srcdir)/lib/hakmem.map -Wl,-z,nodelete -Wl,-z,noseparate-code
EXTRA_lib_libhakmem_la_DEPENDENCIES = lib/hakmem.map
EXTRA_DIST += lib/hakmem.map

# libhakmem.a as one object with hakmem's internals local, so that it
# exports what libhakmem.so exports and links in whole (lib/merge-static.sh).
all-local: lib/libhakmem-static.stamp
lib/libhakmem-static.stamp: lib/libhakmem.la $(srcdir)/lib/merge-static.sh
	$(AM_V_GEN)AR='$(AR)' LD='$(LD)' OBJCOPY='$(OBJCOPY)' RANLIB='$(RANLIB)' \
	  $(SHELL) $(srcdir)/lib/merge-static.sh lib/.libs/libhakmem.a && touch $@
EXTRA_DIST += lib/merge-static.sh
CLEANFILES += lib/libhakmem-static.stamp
