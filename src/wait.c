/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wait.c - deadlines on the monotonic clock, and the spin-then-futex wait
 * every blocking call uses.
 *
 * The wait is an event count on a 32-bit word in shared memory.  A waiter
 * first spins (a cross-CPU wake-up costs tens of microseconds, so while the
 * peer keeps up, spinning finds the work without any system call), then
 * announces itself in *sleepers, reads *seq, re-checks, and sleeps in
 * FUTEX_WAIT_BITSET with an absolute deadline.  A producer publishes its
 * work, fences, and only if someone sleeps bumps *seq and calls FUTEX_WAKE.
 * The seq_cst fence pairs with the waiter's seq_cst increment of *sleepers:
 * either the producer sees the sleeper, or the sleeper sees the work.
 *
 * The futexes are not FUTEX_PRIVATE: the words live in a MAP_SHARED memfd
 * mapping and the waker may be another process.
 */
#include "vdi_int.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static _Atomic uint32_t spin_us = UINT32_MAX; /* UINT32_MAX = not read yet */

void vdi_lib_set_spin_us(uint32_t us) {
  atomic_store(&spin_us, us == UINT32_MAX ? UINT32_MAX - 1 : us);
}

/* The first name, kept for clients built against it. */
void vdi_set_spin_us(uint32_t us) {
  vdi_lib_set_spin_us(us);
}

static uint32_t get_spin_us(void) {
  uint32_t v = atomic_load_explicit(&spin_us, memory_order_relaxed);
  if (v == UINT32_MAX) {
    const char *e = getenv("VDI_SPIN_US");
    v = e ? (uint32_t)strtoul(e, NULL, 10) : 50;
    if (v == UINT32_MAX) v--;
    atomic_store(&spin_us, v);
  }
  return v;
}

int64_t vdi__now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void vdi__deadline_init(struct vdi_deadline *dl, int64_t timeout_ms) {
  /* Negative, and INFINITE passed through a DWORD, mean forever. */
  dl->infinite = timeout_ms < 0 || timeout_ms == (int64_t)INFINITE;
  if (dl->infinite) return;
  clock_gettime(CLOCK_MONOTONIC, &dl->at);
  dl->at.tv_sec += (time_t)(timeout_ms / 1000);
  dl->at.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (dl->at.tv_nsec >= 1000000000L) {
    dl->at.tv_sec++;
    dl->at.tv_nsec -= 1000000000L;
  }
}

bool vdi__deadline_passed(const struct vdi_deadline *dl) {
  if (dl->infinite) return false;
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return now.tv_sec > dl->at.tv_sec ||
         (now.tv_sec == dl->at.tv_sec && now.tv_nsec >= dl->at.tv_nsec);
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

static int futex_wait(_Atomic uint32_t *addr, uint32_t val,
                      const struct vdi_deadline *dl) {
  if (vdi__fault_hit(VDI_SYS_FUTEX)) return -ENOSYS;
  long r = syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_BITSET, val,
                   dl->infinite ? NULL : &dl->at, NULL, FUTEX_BITSET_MATCH_ANY);
  return r == 0 ? 0 : -errno;
}

static _Atomic uint64_t wake_calls;  /* FUTEX_WAKE system calls made */
static _Atomic uint64_t yield_calls; /* sched_yield system calls made */

uint64_t vdi__futex_wakes(void) {
  return atomic_load(&wake_calls);
}
uint64_t vdi__yields(void) {
  return atomic_load(&yield_calls);
}

void vdi__wake_all(_Atomic uint32_t *seq) {
  atomic_fetch_add(seq, 1);
  atomic_fetch_add_explicit(&wake_calls, 1, memory_order_relaxed);
  syscall(SYS_futex, (uint32_t *)seq, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

void vdi__notify(_Atomic uint32_t *seq, _Atomic uint32_t *sleepers) {
  atomic_thread_fence(memory_order_seq_cst);
  if (atomic_load_explicit(sleepers, memory_order_relaxed) != 0)
    vdi__wake_all(seq);
}

/* Adaptive spinning, per thread.  Spinning pays when the peer answers
 * within the spin; it costs when the peer needs the very core we spin on
 * (two cores, three busy threads).  So each thread keeps a budget: a wait
 * that ends inside the spin keeps it, a sleep that turned out short enough
 * for a spin to have caught it grows it, and a long sleep halves it. */
static __thread uint32_t budget_ns = UINT32_MAX;

/* A core is contended when a sched_yield from a spin comes back later
 * than this: a CPU-bound thread ran in between, for its time slice (a
 * yield with nobody else to run returns in about a microsecond; a thread
 * that wakes for a moment, a timer or a kernel worker, gives the core
 * back in tens of microseconds, and must not stop the spin: at 20 us,
 * the usleep loop of a test's own server did, under ASan).  A thread
 * that saw it waits without spinning for CONTENDED_PAUSE_NS, then tries
 * again. */
#define CONTENDED_YIELD_NS 250000
#define CONTENDED_PAUSE_NS 10000000
static __thread int64_t no_spin_until;

/* How long a spin runs before it starts yielding between checks
 * ($VDI_YIELD_NS, default 1 µs).  Measured on 2 cores: a pure spin holds
 * the core the producer needs; yielding from the first iteration makes the
 * round trip slower. */
static _Atomic int64_t yield_ns = -1;

static int64_t yield_after_ns(void) {
  int64_t v = atomic_load_explicit(&yield_ns, memory_order_relaxed);
  if (v < 0) {
    const char *e = getenv("VDI_YIELD_NS");
    v = e ? atoll(e) : 1000;
    if (v < 0) v = 0;
    atomic_store_explicit(&yield_ns, v, memory_order_relaxed);
  }
  return v;
}

int vdi__wait(_Atomic uint32_t *seq, _Atomic uint32_t *sleepers,
              vdi_ready_fn ready, void *arg, const struct vdi_deadline *dl) {
  int r = ready(arg);
  if (r) return r;
  uint32_t max_ns = get_spin_us() * 1000u;
  if (budget_ns > max_ns) budget_ns = max_ns;
  /* A poll (timeout 0) or a deadline already gone: no spin; nor while
   * this thread's core has lately been contended. */
  if (no_spin_until && vdi__now_ns() >= no_spin_until) no_spin_until = 0;
  if (budget_ns && !no_spin_until && !vdi__deadline_passed(dl)) {
    int64_t start = vdi__now_ns(), end = start + budget_ns;
    for (unsigned i = 1;; i++) {
      cpu_relax();
      if ((r = ready(arg)) != 0) return r;
      if ((i & 63) == 0) {
        int64_t now = vdi__now_ns();
        if (now >= end) break;
        /* Past the first microseconds, let a runnable thread that shares
         * our core (the peer, or our own producer) go first: spinning must
         * not starve whoever we wait for. */
        if (now - start >= yield_after_ns()) {
          atomic_fetch_add_explicit(&yield_calls, 1, memory_order_relaxed);
          sched_yield();
          /* The yield gave our core away for a while: it is contended
           * (another thread wanted it), and each spin hands it to that
           * thread for a whole time slice, late for our peer.  Sleep at
           * once, in this wait and the ones that follow for a while. */
          int64_t back = vdi__now_ns();
          if (back - now > CONTENDED_YIELD_NS) {
            no_spin_until = back + CONTENDED_PAUSE_NS;
            break;
          }
        }
      }
    }
  }
  int64_t slept_from = vdi__now_ns();
  for (;;) {
    if (vdi__deadline_passed(dl)) return VD_E_TIMEOUT;
    atomic_fetch_add(sleepers, 1);
    /* Full fence: pairs with the producer's fence in vdi__notify (the
     * condition re-checked below may be read with acquire only). */
    atomic_thread_fence(memory_order_seq_cst);
    uint32_t s = atomic_load(seq);
    r = ready(arg);
    if (r) {
      atomic_fetch_sub(sleepers, 1);
      return r;
    }
    int w = futex_wait(seq, s, dl);
    atomic_fetch_sub(sleepers, 1);
    if ((r = ready(arg)) != 0) {
      int64_t slept = vdi__now_ns() - slept_from;
      if (slept <= (int64_t)max_ns) {
        uint64_t b = (uint64_t)budget_ns * 2 + (uint64_t)slept;
        budget_ns = b > max_ns ? max_ns : (uint32_t)b;
      } else {
        budget_ns /= 2;
      }
      return r;
    }
    if (w == -ETIMEDOUT) return VD_E_TIMEOUT;
    if (w == -ENOSYS || w == -EFAULT) return VD_E_UNEXPECTED;
  }
}

/* Tests that scribble on shared memory use this to wake the victim. */
void vdi__wake_all_for_tests(_Atomic uint32_t *seq) {
  vdi__wake_all(seq);
}
