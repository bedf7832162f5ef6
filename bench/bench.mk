# SPDX-License-Identifier: Apache-2.0
# bench/bench.mk - the benchmark programs and `make bench` (included by the
# top Makefile).  Each bench/NAME.c is one program, $(BUILD)/bench/NAME,
# linked with the static libvdi.  They are part of `all`, so a change that
# breaks them breaks the normal build (and the -Werror CI build).

BENCH_SRCS := $(sort $(wildcard bench/*.c))
BENCH_BINS := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)

all: $(BENCH_BINS)

$(BUILD)/bench/%: bench/%.c bench/bench.h include/vdi.h $(BUILD)/libvdi.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(TOOLCFLAGS) $(CFLAGS) -o $@ $< $(BUILD)/libvdi.a \
	  $(LDLIBS_ALL)

# The driver runs every measurement, prints the tables, writes
# bench/results.json and bench/throughput.png.  $(BENCH_SCALE) scales the
# amounts moved (default 1; 0.25 for a quick look).
bench: all
	@BUILD=$(BUILD) BENCH_SCALE=$(BENCH_SCALE) bench/run.sh
