# Installs libgostack for C programs:
#
#   make install [PREFIX=/usr/local] [DESTDIR=]     # builds with cargo first if needed
#   make uninstall [PREFIX=/usr/local] [DESTDIR=]
#
# installs
#   $(LIBDIR)/libgostack.so.X.Y.Z                 the library (soname libgostack.so.X, set by build.rs)
#   $(LIBDIR)/libgostack.so.X -> libgostack.so.X.Y.Z, libgostack.so -> libgostack.so.X
#   $(INCLUDEDIR)/gostack.h
#   $(LIBDIR)/pkgconfig/gostack.pc                pkg-config --cflags --libs gostack
#   $(LIBDIR)/cmake/gostack/gostackConfig.cmake   find_package(gostack) -> gostack::gostack
#   $(LIBDIR)/cmake/gostack/gostackConfigVersion.cmake
#
# Why a Makefile and not cargo-c: cargo-c is a second tool to build and install (cargo install
# cargo-c compiles a few hundred crates, and distributions do not all package it), and it writes
# its own header and .pc. Here the header is the one cbindgen already writes for every build, the
# soname comes from build.rs, and what remains is copying files and three symlinks, which every
# C user's machine can do with make and install(1). The templates are in pkg/.

PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
CMAKEDIR ?= $(LIBDIR)/cmake/gostack
DESTDIR ?=
CARGO ?= cargo
INSTALL ?= install

# One source of truth for the version: Cargo.toml ([package] version, the first such line).
VERSION := $(shell sed -n 's/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml | head -n 1)
VERSION_MAJOR := $(word 1,$(subst ., ,$(VERSION)))
VERSION_MINOR := $(word 2,$(subst ., ,$(VERSION)))
SONAME := libgostack.so.$(VERSION_MAJOR)
REALNAME := libgostack.so.$(VERSION)
BUILT := target/release/libgostack.so

# Directories the dynamic loader searches on a glibc system (through ld.so.cache for /usr/local).
SYSTEM_LIBDIRS := /lib|/lib64|/usr/lib|/usr/lib64|/usr/local/lib|/usr/local/lib64|/usr/lib/x86_64-linux-gnu

# The .pc paths relative to ${prefix} when they lie under it (pkg-config --define-variable=prefix=...).
PC_LIBDIR := $(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))
PC_INCLUDEDIR := $(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))

.PHONY: all build install uninstall print-version

all: build

build:
	$(CARGO) build --release --lib

print-version:
	@echo $(VERSION)

# `make && sudo make install` works where root has no cargo: the library built by `make` is used.
install:
	@if command -v $(CARGO) >/dev/null 2>&1; then echo "$(CARGO) build --release --lib"; $(CARGO) build --release --lib; \
	elif [ -f $(BUILT) ]; then echo "make: $(CARGO) not found; installing $(BUILT) as built before"; \
	else echo "make: $(CARGO) not found and $(BUILT) does not exist: run make (or cargo build --release) first" >&2; exit 1; fi
	@test -n "$(VERSION)" || { echo "make: no version found in Cargo.toml" >&2; exit 1; }
	@readelf -d $(BUILT) 2>/dev/null | grep -q 'SONAME.*\[$(SONAME)\]' || \
	  { echo "make: $(BUILT) has not the soname $(SONAME) (is build.rs setting it? is readelf, from binutils, installed?)" >&2; exit 1; }
	$(INSTALL) -d "$(DESTDIR)$(LIBDIR)" "$(DESTDIR)$(INCLUDEDIR)" "$(DESTDIR)$(PKGCONFIGDIR)" "$(DESTDIR)$(CMAKEDIR)"
	$(INSTALL) -m 755 $(BUILT) "$(DESTDIR)$(LIBDIR)/$(REALNAME)"
	ln -sf $(REALNAME) "$(DESTDIR)$(LIBDIR)/$(SONAME)"
	ln -sf $(SONAME) "$(DESTDIR)$(LIBDIR)/libgostack.so"
	$(INSTALL) -m 644 include/gostack.h "$(DESTDIR)$(INCLUDEDIR)/gostack.h"
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(PC_LIBDIR)|g' \
	    -e 's|@INCLUDEDIR@|$(PC_INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
	    pkg/gostack.pc.in > "$(DESTDIR)$(PKGCONFIGDIR)/gostack.pc"
	sed -e 's|@CMAKE_TO_LIBDIR@|$(shell realpath -ms --relative-to=$(CMAKEDIR) $(LIBDIR))|g' \
	    -e 's|@CMAKE_TO_INCLUDEDIR@|$(shell realpath -ms --relative-to=$(CMAKEDIR) $(INCLUDEDIR))|g' \
	    -e 's|@VERSION@|$(VERSION)|g' -e 's|@SOVERSION@|$(VERSION_MAJOR)|g' \
	    pkg/gostackConfig.cmake.in > "$(DESTDIR)$(CMAKEDIR)/gostackConfig.cmake"
	sed -e 's|@VERSION@|$(VERSION)|g' -e 's|@VERSION_MAJOR@|$(VERSION_MAJOR)|g' \
	    -e 's|@VERSION_MINOR@|$(VERSION_MINOR)|g' \
	    pkg/gostackConfigVersion.cmake.in > "$(DESTDIR)$(CMAKEDIR)/gostackConfigVersion.cmake"
	@echo "installed gostack $(VERSION) under $(DESTDIR)$(PREFIX)"
	@# The loader finds a library in a system directory through its cache: refresh it (not for a
	@# staged DESTDIR install, which a package manager finishes, nor without root).
	@case "$(LIBDIR)" in $(SYSTEM_LIBDIRS)) \
	  if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null 2>&1; then ldconfig; fi;; \
	  *) echo "note: $(LIBDIR) is not on the loader's default path: link with -Wl,-rpath,$(LIBDIR) or set LD_LIBRARY_PATH";; esac

uninstall:
	rm -f "$(DESTDIR)$(LIBDIR)/libgostack.so" "$(DESTDIR)$(LIBDIR)/$(SONAME)" "$(DESTDIR)$(LIBDIR)/$(REALNAME)"
	rm -f "$(DESTDIR)$(INCLUDEDIR)/gostack.h" "$(DESTDIR)$(PKGCONFIGDIR)/gostack.pc"
	rm -f "$(DESTDIR)$(CMAKEDIR)/gostackConfig.cmake" "$(DESTDIR)$(CMAKEDIR)/gostackConfigVersion.cmake"
	-rmdir "$(DESTDIR)$(CMAKEDIR)" 2>/dev/null
