/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-sqlvdi-abi.c - the binary interface of libsqlvdi.so.
 *
 * A program compiled against the SDK's header links with the Itanium-mangled
 * names of the two classes' members, so libsqlvdi.so must define exactly
 * those (spec section 6), C1/C2 constructors and D1/D2 destructors of both
 * classes included, and nothing else of C++.  The test reads the library's
 * dynamic symbol table itself (ELF64 .dynsym) - what `nm -D --defined-only`
 * shows.  The class sizes (one pointer) are checked at compile time in
 * sqlvdi.cpp; the types of the header's struct fields and members are
 * checked at compile time by cxx/sdk_types, which sqlvdi_field_types runs.
 */
#include "task.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const spec_symbols[] = {
    "_ZN22ClientVirtualDeviceSetC1Ev",
    "_ZN22ClientVirtualDeviceSetC2Ev",
    "_ZN22ClientVirtualDeviceSetD1Ev",
    "_ZN22ClientVirtualDeviceSetD2Ev",
    "_ZN22ClientVirtualDeviceSet6CreateEPcP8VDConfig",
    "_ZN22ClientVirtualDeviceSet16GetConfigurationElP8VDConfig",
    "_ZN22ClientVirtualDeviceSet10OpenDeviceEPcPP19ClientVirtualDevice",
    "_ZN22ClientVirtualDeviceSet5CloseEv",
    "_ZN22ClientVirtualDeviceSet11SignalAbortEv",
    "_ZN22ClientVirtualDeviceSet15OpenInSecondaryEPc",
    "_ZN22ClientVirtualDeviceSet15GetBufferHandleEPhPj",
    "_ZN22ClientVirtualDeviceSet15MapBufferHandleEiPPh",
    "_ZN22ClientVirtualDeviceSet20RegisterDeviceClosedEv",
    "_ZN19ClientVirtualDevice10GetCommandElPP11VDC_Command",
    "_ZN19ClientVirtualDevice15CompleteCommandEP11VDC_Commandiml",
    "_ZN19ClientVirtualDeviceC1Ev",
    "_ZN19ClientVirtualDeviceC2Ev",
    "_ZN19ClientVirtualDeviceD1Ev",
    "_ZN19ClientVirtualDeviceD2Ev",
};
#define NSPEC (sizeof spec_symbols / sizeof spec_symbols[0])

/* Call fn for every defined global or weak symbol of the dynamic table. */
static int each_dynsym(const char *path, void (*fn)(const char *, void *),
                       void *ctx) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return -1;
  struct stat st;
  if (fstat(fd, &st) != 0 || (size_t)st.st_size < sizeof(Elf64_Ehdr)) {
    close(fd);
    return -1;
  }
  size_t size = (size_t)st.st_size;
  const uint8_t *img = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (img == MAP_FAILED) return -1;
  const Elf64_Ehdr *eh = (const Elf64_Ehdr *)img;
  int n = -1;
  if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
      eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_shoff == 0 ||
      eh->e_shoff + (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) > size)
    goto out;
  const Elf64_Shdr *sh = (const Elf64_Shdr *)(img + eh->e_shoff);
  for (int i = 0; i < eh->e_shnum; i++) {
    if (sh[i].sh_type != SHT_DYNSYM) continue;
    if (sh[i].sh_link >= eh->e_shnum) goto out;
    const Elf64_Shdr *strs = &sh[sh[i].sh_link];
    if (sh[i].sh_offset + sh[i].sh_size > size ||
        strs->sh_offset + strs->sh_size > size)
      goto out;
    const Elf64_Sym *sym = (const Elf64_Sym *)(img + sh[i].sh_offset);
    const char *names = (const char *)(img + strs->sh_offset);
    size_t count = sh[i].sh_size / sizeof(Elf64_Sym);
    n = 0;
    for (size_t k = 1; k < count; k++) {
      int bind = ELF64_ST_BIND(sym[k].st_info);
      if (sym[k].st_shndx == SHN_UNDEF || sym[k].st_name >= strs->sh_size ||
          (bind != STB_GLOBAL && bind != STB_WEAK))
        continue;
      fn(names + sym[k].st_name, ctx);
      n++;
    }
  }
out:
  munmap((void *)img, size);
  return n;
}

struct tally {
  int seen[NSPEC];
  int extra;
  int core; /* sanitizer bookkeeping names, in sanitizer builds only */
};

static void check_symbol(const char *name, void *ctx) {
  struct tally *t = ctx;
  for (size_t i = 0; i < NSPEC; i++)
    if (strcmp(name, spec_symbols[i]) == 0) {
      t->seen[i]++;
      return;
    }
  /* Sanitizer builds add their own bookkeeping names (ASan's ODR
   * indicators of the core's globals); they are not part of any ABI. */
  if (strncmp(name, "__odr_asan", 10) == 0 ||
      strncmp(name, "__asan_", 7) == 0) {
    t->core++;
    return;
  }
  fprintf(stderr, "exported but not in the SDK's ABI: %s\n", name);
  t->extra++;
}

TEST_IMPL(sqlvdi_exported_symbols) {
  const char *lib = build_path("libsqlvdi.so");
  struct tally t;
  memset(&t, 0, sizeof t);
  int n = each_dynsym(lib, check_symbol, &t);
  if (n < 0) TASK_FAIL_("%s: cannot read its dynamic symbol table", lib);
  for (size_t i = 0; i < NSPEC; i++) {
    if (t.seen[i] != 1) fprintf(stderr, "missing: %s\n", spec_symbols[i]);
    ASSERT_EQ(t.seen[i], 1);
  }
  /* Nothing else: the core linked into the library stays hidden
   * (sqlvdi/sqlvdi.map), so only the SDK's members are visible. */
  ASSERT_EQ(t.extra, 0);
  ASSERT_EQ(n, (int)NSPEC + t.core);
  return 0;
}

/* cxx/sdk_types holds only static asserts on the SDK header's types; that
 * it was built and runs is the check. */
TEST_IMPL(sqlvdi_field_types) {
  const char *prog = build_path("cxx/sdk_types");
  if (access(prog, X_OK) != 0)
    TASK_FAIL_("%s is not built (make builds it with run-tests)", prog);
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) TASK_FAIL_("fork failed");
  if (pid == 0) {
    execl(prog, prog, (char *)NULL);
    _exit(127);
  }
  ASSERT_EQ(wait_helper(pid), 0);
  return 0;
}
