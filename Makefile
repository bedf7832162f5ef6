# SPDX-License-Identifier: Apache-2.0
# openvdi - one hand-written GNU Makefile (STYLE.md 2.2).
#
#   make                 libvdi.so/.a, libsqlvdi.so, vdisql, vdi, run-tests
#   make check           every test, plus ASan+UBSan and TSan runs, fuzz corpora
#   make bench           benchmarks (bench/results.json, bench/throughput.png)
#   make demo            the main job: back up ~100 MB through 4 devices, restore
#   make install PREFIX=/usr/local DESTDIR=
#   make SAN=address,undefined BUILD=build/asan   a sanitizer build
#
# Everything builds into $(BUILD).  Set WERROR=1 to fail on warnings (CI does).

CC       ?= gcc
CXX      ?= g++
PREFIX   ?= /usr/local
DESTDIR  ?=
BUILD    ?= build
SAN      ?=
OPT      ?= -O2
WERROR   ?=
# Build with every core by default (a command line -j wins).
ifeq ($(filter -j%,$(MAKEFLAGS)),)
MAKEFLAGS += -j$(shell nproc 2>/dev/null || echo 2)
endif

VDI_VERSION = 0.1.0
VDI_SONAME  = libvdi.so.0
VDI_SOVER   = libvdi.so.0.1.0
SQLVDI_SONAME = libsqlvdi.so

WARN = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
       -Wpointer-arith -Wformat=2 -Wno-missing-field-initializers
ifeq ($(WERROR),1)
WARN += -Werror
endif
SANFLAGS =
ifneq ($(SAN),)
SANFLAGS = -fsanitize=$(SAN) -fno-omit-frame-pointer
ifneq ($(findstring undefined,$(SAN)),)
SANFLAGS += -fno-sanitize-recover=undefined
endif
endif

# Only the library, its tests and the fuzzers see the internal headers of
# src/ (-Isrc is given in their rules); tools, benchmarks and the C++
# adapter are held to the public headers by the build itself.
CPPFLAGS += -Iinclude
BASE     = -std=c11 -D_GNU_SOURCE -g $(OPT) -pthread $(SANFLAGS)
LIBCFLAGS = $(BASE) $(WARN) -fPIC -fvisibility=hidden
TOOLCFLAGS = $(BASE) $(WARN)
CXXFLAGS_ALL = -std=c++11 -g $(OPT) -pthread -fPIC $(SANFLAGS) -Wall -Wextra \
       $(if $(filter 1,$(WERROR)),-Werror)
LDLIBS_ALL = -pthread $(SANFLAGS)

LIB_SRCS   := $(sort $(wildcard src/*.c))
LIB_OBJS   := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
TEST_SRCS  := $(sort $(wildcard tests/*.c))
TEST_OBJS  := $(TEST_SRCS:%.c=$(BUILD)/obj/%.o)
VDISQL_SRCS := $(sort $(wildcard tools/vdisql/*.c))
VDISQL_OBJS := $(VDISQL_SRCS:%.c=$(BUILD)/obj/%.o)
VDIAPP_SRCS := $(sort $(wildcard tools/vdi/*.c))
VDIAPP_OBJS := $(VDIAPP_SRCS:%.c=$(BUILD)/obj/%.o)
CONFORM_SRCS := $(sort $(wildcard tools/vdi-conform/*.c))
CONFORM_OBJS := $(CONFORM_SRCS:%.c=$(BUILD)/obj/%.o)
COMMON_SRCS := $(sort $(wildcard tools/common/*.c))
COMMON_OBJS := $(COMMON_SRCS:%.c=$(BUILD)/obj/%.o)
SQLVDI_SRCS := $(sort $(wildcard sqlvdi/*.cpp))
SQLVDI_OBJS := $(SQLVDI_SRCS:%.cpp=$(BUILD)/obj/%.o)
CXXTEST_SRCS := $(sort $(wildcard tests/cxx/*.cpp))
CXXTEST_BINS := $(CXXTEST_SRCS:tests/cxx/%.cpp=$(BUILD)/cxx/%)

PROGS = $(BUILD)/vdisql $(BUILD)/vdi $(BUILD)/vdi-conform
ALL = $(BUILD)/libvdi.a $(BUILD)/$(VDI_SOVER) $(BUILD)/vdi.pc \
      $(if $(SQLVDI_SRCS),$(BUILD)/$(SQLVDI_SONAME)) \
      $(if $(VDISQL_SRCS),$(BUILD)/vdisql) $(if $(VDIAPP_SRCS),$(BUILD)/vdi) \
      $(if $(CONFORM_SRCS),$(BUILD)/vdi-conform) \
      $(BUILD)/run-tests $(CXXTEST_BINS)

.PHONY: all check bench demo install clean format format-check deps fuzz
all: $(ALL)

# The first build on a machine checks (and, as root, installs) the Debian
# packages the project needs, so `make demo` and `make check` work on a
# fresh machine.  Every object waits for it.
$(BUILD)/.deps-ok: tools/install-deps.sh
	@mkdir -p $(BUILD)
	@tools/install-deps.sh
	@touch $@
$(LIB_OBJS) $(TEST_OBJS) $(VDISQL_OBJS) $(VDIAPP_OBJS) $(CONFORM_OBJS) $(COMMON_OBJS) $(SQLVDI_OBJS): | $(BUILD)/.deps-ok

-include $(LIB_OBJS:.o=.d) $(TEST_OBJS:.o=.d) $(VDISQL_OBJS:.o=.d) \
         $(VDIAPP_OBJS:.o=.d) $(CONFORM_OBJS:.o=.d) $(COMMON_OBJS:.o=.d) \
         $(SQLVDI_OBJS:.o=.d)

$(BUILD)/obj/src/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Isrc $(LIBCFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/tests/%.o: tests/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Isrc -Itests -Itools/common $(TOOLCFLAGS) -Wno-missing-prototypes $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/tools/%.o: tools/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itools/common $(TOOLCFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/sqlvdi/%.o: sqlvdi/%.cpp
	@mkdir -p $(dir $@)
	$(CXX) -Iinclude $(CXXFLAGS_ALL) -fvisibility=hidden $(CXXFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libvdi.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/$(VDI_SOVER): $(LIB_OBJS) vdi.map
	$(CC) -shared -Wl,-soname,$(VDI_SONAME) -Wl,--version-script=vdi.map \
	  -Wl,-z,defs -o $@ $(LIB_OBJS) $(LDLIBS_ALL)
	ln -sf $(VDI_SOVER) $(BUILD)/$(VDI_SONAME)
	ln -sf $(VDI_SOVER) $(BUILD)/libvdi.so

$(BUILD)/$(SQLVDI_SONAME): $(SQLVDI_OBJS) $(LIB_OBJS) sqlvdi/sqlvdi.map
	$(CXX) -shared -Wl,-soname,$(SQLVDI_SONAME) \
	  -Wl,--version-script=sqlvdi/sqlvdi.map -Wl,-z,defs -o $@ \
	  $(SQLVDI_OBJS) $(LIB_OBJS) $(LDLIBS_ALL)

$(BUILD)/vdi.pc: vdi.pc.in
	@mkdir -p $(dir $@)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VDI_VERSION)|' $< > $@

$(BUILD)/vdisql: $(VDISQL_OBJS) $(COMMON_OBJS) $(BUILD)/libvdi.a
	$(CC) -o $@ $(VDISQL_OBJS) $(COMMON_OBJS) $(BUILD)/libvdi.a -lsqlite3 -lzstd -lssl -lcrypto $(LDLIBS_ALL)

# vdi's S3 client (tools/vdi/s3.c) and sealed streams (seal.c, libsodium and
# OpenSSL's libcrypto); the tests
# link those two objects too.
S3_PKGS   = libcurl libxml-2.0 libsodium libcrypto
S3_CFLAGS := $(shell pkg-config --cflags $(S3_PKGS) 2>/dev/null)
S3_LIBS   := $(shell pkg-config --libs $(S3_PKGS) 2>/dev/null || echo -lcurl -lxml2 -lsodium -lcrypto)
S3_OBJS   = $(BUILD)/obj/tools/vdi/s3.o $(BUILD)/obj/tools/vdi/seal.o
$(S3_OBJS): CFLAGS += $(S3_CFLAGS)

$(BUILD)/vdi: $(VDIAPP_OBJS) $(COMMON_OBJS) $(BUILD)/libvdi.a
	$(CC) -o $@ $(VDIAPP_OBJS) $(COMMON_OBJS) $(BUILD)/libvdi.a -lzstd -ljansson $(S3_LIBS) $(LDLIBS_ALL)

# The conformance kit plays the server against a client command.
# (vstream.o: --stream openvdi starts the data with the stream's header)
CONFORM_COMMON = $(BUILD)/obj/tools/common/vstream.o $(BUILD)/obj/tools/common/crc32c.o
$(BUILD)/vdi-conform: $(CONFORM_OBJS) $(CONFORM_COMMON) $(BUILD)/libvdi.a
	$(CC) -o $@ $(CONFORM_OBJS) $(CONFORM_COMMON) $(BUILD)/libvdi.a $(LDLIBS_ALL)

# The end-to-end tests run the programs built next to run-tests.
$(BUILD)/run-tests: | $(if $(VDISQL_SRCS),$(BUILD)/vdisql) $(if $(VDIAPP_SRCS),$(BUILD)/vdi) \
                      $(if $(CONFORM_SRCS),$(BUILD)/vdi-conform)
$(BUILD)/run-tests: $(TEST_OBJS) $(COMMON_OBJS) $(S3_OBJS) $(BUILD)/libvdi.a
	$(CC) -o $@ $(TEST_OBJS) $(COMMON_OBJS) $(S3_OBJS) $(BUILD)/libvdi.a -lsqlite3 -lzstd $(S3_LIBS) $(LDLIBS_ALL)

$(BUILD)/cxx/%: tests/cxx/%.cpp $(BUILD)/$(SQLVDI_SONAME)
	@mkdir -p $(dir $@)
	$(CXX) -Isqlvdi/include $(CXXFLAGS_ALL) -o $@ $< -L$(BUILD) -lsqlvdi \
	  -Wl,-rpath,'$$ORIGIN/..' $(LDLIBS_ALL)

CXXCOM_SRCS := $(sort $(wildcard tests/cxx-com/*.cpp))
CXXCOM_BINS := $(CXXCOM_SRCS:tests/cxx-com/%.cpp=$(BUILD)/cxx-com/%)
all: $(CXXCOM_BINS)
$(BUILD)/cxx-com/%: tests/cxx-com/%.cpp $(wildcard tests/cxx-com/*.h) $(BUILD)/libvdi.a
	@mkdir -p $(dir $@)
	$(CXX) -Iinclude $(CXXFLAGS_ALL) -o $@ $< $(BUILD)/libvdi.a $(LDLIBS_ALL)

# Fragments owned by their directories (benchmarks, fuzzers).
-include bench/bench.mk
-include fuzz/fuzz.mk
-include tests/soak.mk

# ---------------------------------------------------------------- checks
check: all
	@BUILD=$(BUILD) MAKE="$(MAKE)" tests/check.sh


demo: all
	@BUILD=$(BUILD) tools/demo.sh

deps:
	@tools/install-deps.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h' '*.cpp')
format-check:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h' '*.cpp')

# vdi.pc is written here, with the PREFIX installed into (the one in
# $(BUILD) is the build's); tests/test-app-install.c checks it.
install: all
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include \
	  $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin \
	  $(DESTDIR)$(PREFIX)/include/sqlvdi
	install -m 0644 include/vdi.h $(DESTDIR)$(PREFIX)/include/
	for h in include/vdi_*.h; do [ -f "$$h" ] && install -m 0644 $$h $(DESTDIR)$(PREFIX)/include/ || true; done
	install -m 0755 $(BUILD)/$(VDI_SOVER) $(DESTDIR)$(PREFIX)/lib/
	ln -sf $(VDI_SOVER) $(DESTDIR)$(PREFIX)/lib/$(VDI_SONAME)
	ln -sf $(VDI_SOVER) $(DESTDIR)$(PREFIX)/lib/libvdi.so
	install -m 0644 $(BUILD)/libvdi.a $(DESTDIR)$(PREFIX)/lib/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VDI_VERSION)|' vdi.pc.in \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/vdi.pc
	chmod 0644 $(DESTDIR)$(PREFIX)/lib/pkgconfig/vdi.pc
	if [ -f $(BUILD)/$(SQLVDI_SONAME) ]; then \
	  install -m 0755 $(BUILD)/$(SQLVDI_SONAME) $(DESTDIR)$(PREFIX)/lib/; \
	  install -m 0644 sqlvdi/include/*.h $(DESTDIR)$(PREFIX)/include/sqlvdi/; fi
	for p in vdisql vdi vdi-conform; do [ -f $(BUILD)/$$p ] && install -m 0755 $(BUILD)/$$p $(DESTDIR)$(PREFIX)/bin/ || true; done
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/system
	sed 's|@BINDIR@|$(PREFIX)/bin|g' tools/vdisql/vdisql@.service.in > $(DESTDIR)$(PREFIX)/lib/systemd/system/vdisql@.service
	install -d $(DESTDIR)$(PREFIX)/share/man/man1
	for m in tools/vdi/vdi.1 tools/vdisql/vdisql.1 tools/vdi-conform/vdi-conform.1; do [ -f $$m ] && install -m 0644 $$m $(DESTDIR)$(PREFIX)/share/man/man1/ || true; done
	install -d $(DESTDIR)$(PREFIX)/share/man/man3
	install -m 0644 man/libvdi.3 $(DESTDIR)$(PREFIX)/share/man/man3/

clean:
	rm -rf build
