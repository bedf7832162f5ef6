# SPDX-License-Identifier: Apache-2.0
# fuzz.mk - the fuzz targets of fuzz/ (STYLE.md 2.9; docs/FUZZING.md).
# Included by the top Makefile.
#
#   make fuzz            clang libFuzzer binaries in $(BUILD)/fuzz/, then
#                        each target runs FUZZ_SECONDS (default 30) on its
#                        work corpus $(BUILD)/fuzz/corpus-<target>, seeded
#                        from fuzz/corpora/<target>/
#   make fuzz-build      only build them
#   make fuzz-replay     every committed corpus file through its target,
#                        built with $(CC) and ASan+UBSan (what `make check`
#                        runs); prints "N passed, N failed"
#   make fuzz-crashes    replay fuzz/crashes/<target>/ (known open bugs),
#                        strict (FZ_STRICT=1) and with leak checks
#
# The library and the tool sources are compiled again for each flavour:
# with clang and the fuzzer's instrumentation for libFuzzer, with $(CC) for
# the replay; neither reuses the objects of the normal build.

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 30
FUZZ_FLAGS   ?=
FUZZ_TARGETS := $(sort $(patsubst fuzz/%.c,%,$(filter-out \
                  fuzz/fuzz_helpers.c,$(wildcard fuzz/fuzz_*.c))))

FZ_SRC_LIB    := $(sort $(wildcard src/*.c))
FZ_SRC_TOOLS  := $(sort $(wildcard tools/common/*.c)) \
                 $(filter-out tools/vdisql/main.c, \
                   $(sort $(wildcard tools/vdisql/*.c)))
FZ_SRC_APP    := $(filter-out tools/vdi/main.c, \
                   $(sort $(wildcard tools/vdi/*.c)))
FZ_INC  := -Iinclude -Isrc -Itools/common -Itools/vdisql -Itools/vdi -Ifuzz
# The tools are held to the public headers here too, as in the normal build.
FZ_INC_TOOLS := -Iinclude -Itools/common -Itools/vdisql -Itools/vdi \
                $(S3_CFLAGS)
FZ_SAN  := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
           -fno-omit-frame-pointer
FZ_BASE := -std=c11 -D_GNU_SOURCE -g -O1 -pthread $(WARN)
FZ_LIBS := -lsqlite3 -lzstd -lssl -lcrypto $(S3_LIBS) -pthread

# $(call fz_flavour,DIR,CC,COMPILE-FLAGS,LINK-FLAGS,EXTRA-OBJ): the rules of
# one flavour (EXTRA-OBJ: the replay's main).  The tools' main() is renamed
# so that fuzz_cli_args can call it; every other object goes into archives,
# so a target that stubs a function (fuzz_cli_args stubs statement
# execution) gets its own.
define fz_flavour
$(1)/obj/%.o: %.c
	@mkdir -p $$(dir $$@)
	$(2) $(FZ_INC) $(FZ_BASE) $(3) -MMD -MP -c $$< -o $$@
$(1)/obj/tools/%.o: tools/%.c
	@mkdir -p $$(dir $$@)
	$(2) $(FZ_INC_TOOLS) $(FZ_BASE) $(3) -MMD -MP -c $$< -o $$@
$(1)/obj/main/vdisql.o: tools/vdisql/main.c
	@mkdir -p $$(dir $$@)
	$(2) $(FZ_INC_TOOLS) $(FZ_BASE) $(3) -Wno-missing-prototypes \
	  -Dmain=vdisql_main -MMD -MP -c $$< -o $$@
$(1)/obj/main/vdi.o: tools/vdi/main.c
	@mkdir -p $$(dir $$@)
	$(2) $(FZ_INC_TOOLS) $(FZ_BASE) $(3) -Wno-missing-prototypes \
	  -Dmain=vdi_main -MMD -MP -c $$< -o $$@
$(1)/libvdi.a: $(FZ_SRC_LIB:%.c=$(1)/obj/%.o)
	@rm -f $$@
	ar rcs $$@ $$^
$(1)/libtools.a: $(FZ_SRC_TOOLS:%.c=$(1)/obj/%.o)
	@rm -f $$@
	ar rcs $$@ $$^
$(1)/libapp.a: $(FZ_SRC_APP:%.c=$(1)/obj/%.o)
	@rm -f $$@
	ar rcs $$@ $$^
$(1)/fuzz_%: $(1)/obj/fuzz/fuzz_%.o $(1)/obj/fuzz/fuzz_helpers.o $(5) \
    $(1)/obj/main/vdisql.o $(1)/obj/main/vdi.o \
    $(1)/libtools.a $(1)/libapp.a $(1)/libvdi.a
	$(2) -o $$@ $$< $(1)/obj/fuzz/fuzz_helpers.o $(5) \
	  $$(if $$(filter fuzz_cli_args,$$(notdir $$@)),$(1)/obj/main/vdisql.o \
	    $(1)/obj/main/vdi.o) \
	  $(1)/libtools.a $(1)/libapp.a $(1)/libvdi.a $(4) $(FZ_LIBS)
-include $$(wildcard $(1)/obj/*/*.d $(1)/obj/*/*/*.d)
endef

FZB := $(BUILD)/fuzz
FRB := $(BUILD)/fuzz-replay
FZ_CFLAGS_LF  := $(FZ_SAN) -fsanitize=fuzzer-no-link -Wno-format-nonliteral
# (clang counts vsnprintf(fmt) in a printf-like wrapper as non-literal.)
FZ_LDFLAGS_LF := $(FZ_SAN) -fsanitize=fuzzer
FZ_CFLAGS_RP  := $(FZ_SAN) $(CFLAGS)
$(eval $(call fz_flavour,$(FZB),$(FUZZ_CC),$(FZ_CFLAGS_LF),$(FZ_LDFLAGS_LF),))
FZ_DRIVER     := $(FRB)/obj/fuzz/regression_driver.o
$(eval $(call fz_flavour,$(FRB),$(CC),$(FZ_CFLAGS_RP),$(FZ_SAN),$(FZ_DRIVER)))

# Objects are made by pattern rules; keep them, so that a second `make`
# rebuilds nothing.
.PRECIOUS: $(FZB)/obj/%.o $(FRB)/obj/%.o $(FZB)/obj/tools/%.o $(FRB)/obj/tools/%.o

.PHONY: fuzz fuzz-build fuzz-replay fuzz-crashes
fuzz-build: $(FUZZ_TARGETS:%=$(FZB)/%)

# Each target: copy the seeds into the work corpus, run the time box with
# the corpus and the seeds' dictionary of the target if any.  Output is
# kept in $(FZB)/<target>.log; a crash stops `make fuzz` with its report.
fuzz: fuzz-build
	@set -e; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FZB)/corpus-$$t $(FZB)/artifacts-$$t; \
	  if [ -d fuzz/corpora/$$t ]; then \
	    cp -n fuzz/corpora/$$t/* $(FZB)/corpus-$$t/ 2>/dev/null || true; fi; \
	  echo "== $$t: $(FUZZ_SECONDS) s"; \
	  $(FZB)/$$t $(FZB)/corpus-$$t -max_total_time=$(FUZZ_SECONDS) \
	    -artifact_prefix=$(FZB)/artifacts-$$t/ -close_fd_mask=3 \
	    -print_final_stats=1 $$(cat fuzz/options/$$t 2>/dev/null) \
	    $(FUZZ_FLAGS) > $(FZB)/$$t.log 2>&1 || \
	    { tail -n 60 $(FZB)/$$t.log; exit 1; }; \
	  grep -E '[[:space:]]DONE[[:space:]]|stat::(number_of_exec|average_exec)' \
	    $(FZB)/$$t.log | tr '\n' ' '; echo; \
	done

# The replay: one binary per target (regression_driver.c's main), each run
# on its corpus directory; one summary line for check.sh.
fuzz-replay: $(FUZZ_TARGETS:%=$(FRB)/%)
	@pass=0; fail=0; for t in $(FUZZ_TARGETS); do \
	  [ -d fuzz/corpora/$$t ] || continue; \
	  out=$$($(FRB)/$$t fuzz/corpora/$$t 2>&1 | tail -n 1); \
	  p=$$(echo "$$out" | sed -nE 's/^([0-9]+) passed, ([0-9]+) failed$$/\1/p'); \
	  f=$$(echo "$$out" | sed -nE 's/^([0-9]+) passed, ([0-9]+) failed$$/\2/p'); \
	  if [ -z "$$p" ]; then echo "$$t: replay crashed: $$out"; p=0; f=1; \
	  elif [ "$$f" != 0 ]; then echo "$$t: $$out"; fi; \
	  pass=$$((pass + p)); fail=$$((fail + f)); \
	done; echo "$$pass passed, $$fail failed"; [ $$fail -eq 0 ]

fuzz-crashes: $(FUZZ_TARGETS:%=$(FRB)/%)
	@for t in $(FUZZ_TARGETS); do [ -d fuzz/crashes/$$t ] || continue; \
	  echo "== $$t"; FZ_STRICT=1 ASAN_OPTIONS=detect_leaks=1 \
	  $(FRB)/$$t fuzz/crashes/$$t \
	  || true; done
