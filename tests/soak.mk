# SPDX-License-Identifier: Apache-2.0
# tests/soak.mk - `make soak`: random backup/restore/abort/kill cycles of
# the library for a given time and seed (not part of `make check`).
#
#   make soak                         60 s, a seed from the clock (printed)
#   make soak SOAK_SEED=42 SOAK_SECONDS=600
#   $(BUILD)/run-tests --helper soak -s SEED -c CYCLE   replay one cycle
#
# A failure prints the seed and the cycle to replay; the exit status is 1.
SOAK_SECONDS ?= 60
SOAK_SEED ?=

.PHONY: soak
soak: $(BUILD)/run-tests
	$(BUILD)/run-tests --helper soak $(if $(SOAK_SEED),-s $(SOAK_SEED)) -T $(SOAK_SECONDS)
