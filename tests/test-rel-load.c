/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-rel-load.c - load and soak.
 *
 * A backup session here is the library used directly: the client set lives
 * in this process (a thread per set, a thread per device keeping the
 * "backup file" in memory), and its server is a separate helper process
 * (rel_load_srv) that plays the engine: on backup it sends Writes of a
 * pattern seeded by (set, block), one command in flight per device on
 * every device at once; on restore it sends Reads and checks every byte.
 * The server can be told to SignalAbort or to SIGKILL itself before a
 * given command, the client to SignalAbort after a given completion.
 *
 * rel_load_32x4: 32 sets of 4 devices back up and then restore, all at
 * once, on 2 cores; every session must succeed with the right bytes.
 *
 * The soak (not in make check): `run-tests --helper soak -s SEED -T SECS`
 * (or `make soak SOAK_SEED=.. SOAK_SECONDS=..`, tests/soak.mk) runs random
 * cycles of concurrent backups, restores, aborts from either side and
 * kills of either side (the client then in a process of its own), checking
 * content, outcomes and leaks after each cycle; it prints the seed first, and
 * on a failure the seed and cycle to replay with `-s SEED -c CYCLE`.
 */
#include "test-rel-fault-util.h"

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BLK          65536
#define EXIT_ABORTED 10 /* rel_load_srv: the operation ended in an abort */
#define EXIT_BADDATA 5  /* rel_load_srv: a restored block was wrong */

static uint32_t block_seed(uint32_t seed, int k) {
  return seed * 4096u + (uint32_t)k;
}

/* ------------------------------------------------------- server helper */

/* argv: name seed nblk ndev backup|restore none|abort|die at */
HELPER_IMPL(rel_load_srv) {
  const char *name = argv[1];
  uint32_t seed = (uint32_t)strtoul(argv[2], NULL, 10);
  int nblk = atoi(argv[3]), ndev = atoi(argv[4]);
  int backup = strcmp(argv[5], "backup") == 0;
  const char *action = argv[6];
  int at = atoi(argv[7]);
  lp_srv s;
  memset(&s, 0, sizeof s);
  ASSERT_RC(vdi_srv_new(&s.srv), 0);
  int rc;
  int64_t end = now_ms() + 10000;
  /* No set yet (VD_E_INVALID), or we met the previous set of that name
   * whose listening socket a fork of the soak process held until its exec
   * (accepted by nobody, then reset: VD_E_ABORT): try again. */
  while (((rc = vdi_srv_open(s.srv, NULL, name)) == VD_E_INVALID ||
          rc == VD_E_ABORT) &&
         now_ms() < end)
    sleep_ms(2);
  ASSERT_RC(rc, 0);
  VDConfig c;
  ASSERT_RC(vdi_srv_get_configuration(s.srv, &c), 0);
  ASSERT_EQ(c.deviceCount, ndev);
  ASSERT_RC(vdi_srv_begin_configuration(s.srv,
                                        backup ? VDF_WriteMedia : VDF_ReadMedia,
                                        4096, 0, BLK, 0),
            0);
  ASSERT_RC(vdi_srv_request_buffers(s.srv, BLK, 0, (uint32_t)ndev), 0);
  ASSERT_RC(vdi_srv_end_configuration(s.srv), 0);
  lp_srv_open_devs(&s, name, ndev);
  lp_srv_agent_start(&s);
  uint8_t *buf[VDI_MAX_DEVICES];
  lp_slot slot[VDI_MAX_DEVICES];
  for (int d = 0; d < ndev; d++)
    ASSERT_RC(vdi_srv_allocate_buffer(s.srv, &buf[d], BLK, 0), 0);
  int sent = 0, aborted = 0;
  for (int k0 = 0; k0 < nblk && !aborted; k0 += ndev) {
    int n = 0;
    for (int d = 0; d < ndev && k0 + d < nblk; d++, n++) {
      int k = k0 + d;
      if (sent == at && strcmp(action, "die") == 0) raise(SIGKILL);
      if (sent == at && strcmp(action, "abort") == 0) {
        ASSERT_RC(vdi_srv_signal_abort(s.srv), 0);
        aborted = 1;
        break;
      }
      if (backup) lp_fill(buf[d], BLK, block_seed(seed, k));
      lp_slot_init(&slot[d], backup ? VDC_Write : VDC_Read, BLK,
                   (int64_t)k * BLK, buf[d]);
      rc = vdi_srvdev_send_command(s.dev[d], &slot[d].cmd);
      sent++;
      if (rc != 0) {
        /* Only an abort (by the client) may refuse a command. */
        ASSERT_RC(rc, VD_E_ABORT);
        aborted = 1;
      }
    }
    for (int d = 0; d < n; d++) {
      ASSERT(lp_slot_wait(&slot[d], 20000));
      if (slot[d].code != 0) {
        ASSERT_EQ(slot[d].code, ERROR_OPERATION_ABORTED);
        aborted = 1;
        continue;
      }
      ASSERT_EQ(slot[d].bytes, BLK);
      if (!backup && lp_check(buf[d], BLK, block_seed(seed, k0 + d)) >= 0) {
        fprintf(stderr, "rel_load_srv %s: block %d differs\n", name, k0 + d);
        return EXIT_BADDATA;
      }
    }
  }
  if (aborted) {
    int a = lp_srv_agent_join(&s, 10000);
    ASSERT(a == VD_E_ABORT);
    vdi_srv_close(s.srv);
    vdi_srv_free(s.srv);
    return EXIT_ABORTED;
  }
  for (int d = 0; d < ndev; d++)
    ASSERT_RC(vdi_srv_free_buffer(s.srv, buf[d], BLK), 0);
  for (int d = 0; d < ndev; d++)
    ASSERT_RC(vdi_srvdev_close_device(s.dev[d]), 0);
  ASSERT_RC(lp_srv_agent_join(&s, 10000), 0);
  ASSERT_RC(vdi_srv_close(s.srv), 0);
  vdi_srv_free(s.srv);
  return 0;
}

/* ------------------------------------------------------- client side */

struct lset;

struct ldev {
  struct lset *L;
  vdi_device_t *dev;
  pthread_t t;
  int rc; /* how its loop ended */
};

/* One set of the client side: the "backup file" is `store`. */
struct lset {
  int idx;
  char name[96];
  uint32_t seed;
  int nblk, ndev;
  uint8_t *store;
  int stored; /* a complete backup is in store */
  vdi_set_t *set;
  struct ldev d[VDI_MAX_DEVICES];
  atomic_int done;     /* commands completed this session */
  int client_abort_at; /* SignalAbort after that many, or -1 */
  int kill_at;         /* rel_load_cli: SIGKILL instead of completing command
                          number kill_at + 1 (0 = never) */
  atomic_int claimed;
  atomic_int bad; /* a command outside the file */
  /* outcome of the last session */
  int srv_exit, client_rc;
  char why[160];
};

static void *ldev_main(void *arg) {
  struct ldev *D = arg;
  struct lset *L = D->L;
  for (;;) {
    VDC_Command *c;
    int rc = vdi_dev_get_command(D->dev, -1, &c);
    if (rc != 0) {
      D->rc = rc;
      return NULL;
    }
    uint64_t end = c->position + c->size;
    uint32_t code = 0;
    if (c->position > (uint64_t)L->nblk * BLK ||
        end > (uint64_t)L->nblk * BLK) {
      atomic_store(&L->bad, 1);
      code = ERROR_INVALID_PARAMETER;
    } else if (c->commandCode == VDC_Write) {
      memcpy(L->store + c->position, c->buffer, c->size);
    } else if (c->commandCode == VDC_Read) {
      memcpy(c->buffer, L->store + c->position, c->size);
    } else {
      atomic_store(&L->bad, 1);
      code = ERROR_NOT_SUPPORTED;
    }
    if (L->kill_at && atomic_fetch_add(&L->claimed, 1) >= L->kill_at)
      raise(SIGKILL); /* with this command still unanswered */
    rc = vdi_dev_complete_command(D->dev, c, code, code ? 0 : c->size, end);
    if (rc != 0) {
      D->rc = rc;
      return NULL;
    }
    int n = atomic_fetch_add(&L->done, 1) + 1;
    if (n == L->client_abort_at) vdi_set_signal_abort(L->set);
  }
}

/* One session: create the set, start the server helper, serve until the
 * end; L->srv_exit and each device's rc tell what happened.  Returns 0, or
 * -1 with L->why set when something is wrong whatever the scenario. */
static int session(struct lset *L, int backup, const char *action, int at,
                   int client_abort_at) {
  char seed[16], nblk[16], ndev[16], ats[16];
  VDConfig cfg = lp_cfg((uint32_t)L->ndev, VDF_LikePipe), got;
  snprintf(seed, sizeof seed, "%u", L->seed);
  snprintf(nblk, sizeof nblk, "%d", L->nblk);
  snprintf(ndev, sizeof ndev, "%d", L->ndev);
  snprintf(ats, sizeof ats, "%d", at);
  atomic_store(&L->done, 0);
  L->client_abort_at = client_abort_at;
  /* Another thread's fork (spawn_helper) holds a copy of our listening
   * socket until its exec: the name stays bound for that moment. */
  int rc;
  int64_t until = now_ms() + 5000;
  while ((rc = vdi_set_create(L->set, L->name, &cfg)) == VD_E_BUSY &&
         now_ms() < until)
    sleep_ms(1);
  if (rc != 0) {
    snprintf(L->why, sizeof L->why, "Create: %s", vdi_error_name(rc));
    return -1;
  }
  pid_t pid = spawn_helper("rel_load_srv", L->name, seed, nblk, ndev,
                           backup ? "backup" : "restore", action, ats, NULL);
  while ((rc = vdi_set_get_configuration(L->set, 200, &got)) == VD_E_TIMEOUT) {
    if (waitpid(pid, NULL, WNOHANG) == pid) {
      snprintf(L->why, sizeof L->why, "server ended before configuring");
      vdi_set_close(L->set);
      return -1;
    }
  }
  int opened = 0;
  if (rc == 0) {
    char dn[128];
    for (int i = 0; i < L->ndev; i++) {
      L->d[i].L = L;
      L->d[i].rc = 0;
      rc = vdi_set_open_device(L->set, lp_devname(L->name, i, dn, sizeof dn),
                               &L->d[i].dev);
      if (rc != 0) break;
      ASSERT_EQ(pthread_create(&L->d[i].t, NULL, ldev_main, &L->d[i]), 0);
      opened++;
    }
  }
  L->client_rc = rc;
  for (int i = 0; i < opened; i++) {
    pthread_join(L->d[i].t, NULL);
    if (L->client_rc == 0 && L->d[i].rc != VD_E_CLOSE)
      L->client_rc = L->d[i].rc;
  }
  int crc = vdi_set_close(L->set);
  L->srv_exit = wait_helper(pid);
  if (crc != 0 && crc != VD_E_OPEN) {
    snprintf(L->why, sizeof L->why, "Close: %s", vdi_error_name(crc));
    return -1;
  }
  if (atomic_load(&L->bad)) {
    snprintf(L->why, sizeof L->why, "a command outside the file");
    return -1;
  }
  return 0;
}

/* A normal session must end normally with every block right. */
static int expect_normal(struct lset *L, int backup) {
  if (L->srv_exit != 0 || L->client_rc != 0 ||
      atomic_load(&L->done) != L->nblk) {
    snprintf(L->why, sizeof L->why,
             "%s: server exit %d, client %s, %d of %d blocks",
             backup ? "backup" : "restore", L->srv_exit,
             vdi_error_name(L->client_rc), atomic_load(&L->done), L->nblk);
    return -1;
  }
  if (backup) {
    for (int k = 0; k < L->nblk; k++)
      if (lp_check(L->store + (size_t)k * BLK, BLK, block_seed(L->seed, k)) >=
          0) {
        snprintf(L->why, sizeof L->why, "backup: block %d differs", k);
        return -1;
      }
    L->stored = 1;
  }
  return 0;
}

/* An interrupted session: the server saw the abort (or was killed), and
 * the client's every device ended with VD_E_ABORT. */
static int expect_aborted(struct lset *L, int killed) {
  int want = killed ? 128 + SIGKILL : EXIT_ABORTED;
  if (L->srv_exit != want || L->client_rc != VD_E_ABORT) {
    snprintf(L->why, sizeof L->why,
             "interrupted: server exit %d (want %d), client %s", L->srv_exit,
             want, vdi_error_name(L->client_rc));
    return -1;
  }
  return 0;
}

static int lset_init(struct lset *L, int idx, uint32_t seed, int nblk,
                     int ndev) {
  memset(L, 0, sizeof *L);
  L->idx = idx;
  L->seed = seed;
  L->nblk = nblk;
  L->ndev = ndev;
  snprintf(L->name, sizeof L->name, "%s", unique_name("load"));
  L->store = calloc((size_t)nblk, BLK);
  ASSERT_NOT_NULL(L->store);
  return vdi_set_new(&L->set);
}

static void lset_free(struct lset *L) {
  vdi_set_free(L->set);
  free(L->store);
}

/* --------------------------------------------------------- 32 x 4 load */

#define LOAD_SETS 32
#define LOAD_DEVS 4
#define LOAD_BLKS 64 /* 4 MiB a set */

static void *load_main(void *arg) {
  struct lset *L = arg;
  if (session(L, 1, "none", -1, -1) == 0 && expect_normal(L, 1) == 0 &&
      session(L, 0, "none", -1, -1) == 0)
    expect_normal(L, 0);
  return NULL;
}

TEST_IMPL_TIMEOUT(rel_load_32x4, 120) {
  static struct lset sets[LOAD_SETS];
  pthread_t t[LOAD_SETS];
  rt_probe base;
  rt_probe_shared_only = 1;
  rt_probe_take(&base);
  int64_t t0 = now_ms();
  for (int i = 0; i < LOAD_SETS; i++) {
    ASSERT_RC(lset_init(&sets[i], i, 1000u + (uint32_t)i, LOAD_BLKS, LOAD_DEVS),
              0);
    ASSERT_EQ(pthread_create(&t[i], NULL, load_main, &sets[i]), 0);
  }
  int failed = 0;
  for (int i = 0; i < LOAD_SETS; i++) {
    pthread_join(t[i], NULL);
    if (sets[i].why[0]) {
      fprintf(stderr, "set %d: %s\n", i, sets[i].why);
      failed++;
    }
  }
  fprintf(stderr,
          "%d sets x %d devices, backup + restore of %d KiB each: "
          "%lld ms\n",
          LOAD_SETS, LOAD_DEVS, LOAD_BLKS * BLK / 1024,
          (long long)(now_ms() - t0));
  ASSERT_EQ(failed, 0);
  for (int i = 0; i < LOAD_SETS; i++)
    lset_free(&sets[i]);
  rt_probe_expect(&base, "32x4 load");
  return 0;
}

/* ---------------------------------------------------------------- soak */

static uint64_t soak_seed, soak_cycle;
static int soak_in_cycle;

static uint64_t splitmix(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static void soak_replay_hint(void) {
  if (soak_in_cycle)
    fprintf(stderr,
            "soak: FAILED in cycle %llu (seed %llu); replay with\n"
            "  run-tests --helper soak -s %llu -c %llu\n",
            (unsigned long long)soak_cycle, (unsigned long long)soak_seed,
            (unsigned long long)soak_seed, (unsigned long long)soak_cycle);
}

/* argv: name seed nblk ndev at.  A client in a process of its own that
 * serves like ldev_main (Reads get the pattern of their block, Writes are
 * dropped) and SIGKILLs itself instead of completing command at + 1. */
HELPER_IMPL(rel_load_cli) {
  struct lset L;
  memset(&L, 0, sizeof L);
  snprintf(L.name, sizeof L.name, "%s", argv[1]);
  L.seed = (uint32_t)strtoul(argv[2], NULL, 10);
  L.nblk = atoi(argv[3]);
  L.ndev = atoi(argv[4]);
  int at = atoi(argv[5]);
  L.store = calloc((size_t)L.nblk, BLK);
  ASSERT_NOT_NULL(L.store);
  for (int k = 0; k < L.nblk; k++)
    lp_fill(L.store + (size_t)k * BLK, BLK, block_seed(L.seed, k));
  ASSERT_RC(vdi_set_new(&L.set), 0);
  VDConfig cfg = lp_cfg((uint32_t)L.ndev, VDF_LikePipe), got;
  /* The name may still be held for a moment by a fork of the soak
   * process (see session()). */
  int rc;
  int64_t until = now_ms() + 5000;
  while ((rc = vdi_set_create(L.set, L.name, &cfg)) == VD_E_BUSY &&
         now_ms() < until)
    sleep_ms(1);
  ASSERT_RC(rc, 0);
  rc = vdi_set_get_configuration(L.set, 15000, &got);
  ASSERT_RC(rc, 0);
  L.client_abort_at = -1;
  L.kill_at = at;
  char dn[128];
  for (int i = 0; i < L.ndev; i++) {
    L.d[i].L = &L;
    ASSERT_RC(vdi_set_open_device(L.set, lp_devname(L.name, i, dn, sizeof dn),
                                  &L.d[i].dev),
              0);
    ASSERT_EQ(pthread_create(&L.d[i].t, NULL, ldev_main, &L.d[i]), 0);
  }
  for (int i = 0; i < L.ndev; i++)
    pthread_join(L.d[i].t, NULL);
  return 1; /* not reached: a serving thread kills the process */
}

/* The client-kill session: client and server both helpers. */
static int session_cli_kill(struct lset *L, int backup, int at) {
  char seed[16], nblk[16], ndev[16], ats[16];
  snprintf(seed, sizeof seed, "%u", L->seed);
  snprintf(nblk, sizeof nblk, "%d", L->nblk);
  snprintf(ndev, sizeof ndev, "%d", L->ndev);
  snprintf(ats, sizeof ats, "%d", at);
  pid_t cli =
      spawn_helper("rel_load_cli", L->name, seed, nblk, ndev, ats, NULL);
  pid_t srv = spawn_helper("rel_load_srv", L->name, seed, nblk, ndev,
                           backup ? "backup" : "restore", "none", "-1", NULL);
  int c = wait_helper(cli);
  L->srv_exit = wait_helper(srv);
  if (c != 128 + SIGKILL || L->srv_exit != EXIT_ABORTED) {
    snprintf(L->why, sizeof L->why,
             "client killed: client exit %d, server exit %d (want %d)", c,
             L->srv_exit, EXIT_ABORTED);
    return -1;
  }
  return 0;
}

/* What one set does in a cycle. */
enum kind {
  K_NORMAL,    /* backup, then restore, both complete */
  K_SRV_ABORT, /* the server SignalAborts mid-way */
  K_SRV_KILL,  /* the server is SIGKILLed mid-way */
  K_CLI_ABORT, /* the client SignalAborts mid-way */
  K_CLI_KILL,  /* the client (a process of its own here) is SIGKILLed */
  K_COUNT
};
static const char *const kind_name[K_COUNT] = {
    "normal", "server-abort", "server-kill", "client-abort", "client-kill"};

struct soak_job {
  struct lset L;
  enum kind kind;
  int in_restore; /* interrupt the restore (after a good backup) */
  int at;         /* where to interrupt: before command / after completion */
};

static void *soak_main(void *arg) {
  struct soak_job *J = arg;
  struct lset *L = &J->L;
  int interrupt_backup = J->kind != K_NORMAL && !J->in_restore;
  const char *act = J->kind == K_SRV_ABORT  ? "abort"
                    : J->kind == K_SRV_KILL ? "die"
                                            : "none";
  int cli_at = J->kind == K_CLI_ABORT ? J->at + 1 : -1;
  /* Backup. */
  if (interrupt_backup && J->kind == K_CLI_KILL) {
    if (session_cli_kill(L, 1, J->at + 1) != 0) return NULL;
  } else if (interrupt_backup) {
    if (session(L, 1, act, J->at, cli_at) == 0)
      expect_aborted(L, J->kind == K_SRV_KILL);
    if (L->why[0]) return NULL;
    /* The set object is reusable: a complete backup after it. */
  }
  if (session(L, 1, "none", -1, -1) != 0 || expect_normal(L, 1) != 0)
    return NULL;
  /* Restore. */
  if (J->kind == K_CLI_KILL && J->in_restore) {
    if (session_cli_kill(L, 0, J->at + 1) != 0) return NULL;
  } else if (J->kind != K_NORMAL && J->in_restore) {
    if (session(L, 0, act, J->at, cli_at) == 0)
      expect_aborted(L, J->kind == K_SRV_KILL);
    if (L->why[0]) return NULL;
  }
  if (session(L, 0, "none", -1, -1) == 0) expect_normal(L, 0);
  return NULL;
}

static int soak_one_cycle(uint64_t cycle) {
  uint64_t x = soak_seed ^ (cycle * 0x2545f4914f6cdd1dull);
  int nsets = 1 + (int)(splitmix(&x) % 4);
  struct soak_job *jobs = calloc((size_t)nsets, sizeof *jobs);
  pthread_t *t = calloc((size_t)nsets, sizeof *t);
  ASSERT(jobs && t);
  for (int i = 0; i < nsets; i++) {
    struct soak_job *J = &jobs[i];
    int ndev = 1 + (int)(splitmix(&x) % 4);
    int nblk = 1 + (int)(splitmix(&x) % 24);
    ASSERT_RC(lset_init(&J->L, i, (uint32_t)splitmix(&x), nblk, ndev), 0);
    J->kind = (enum kind)(splitmix(&x) % K_COUNT);
    J->in_restore = (int)(splitmix(&x) % 2);
    /* Interrupt before the last block, so something is left to do. */
    J->at = nblk > 1 ? (int)(splitmix(&x) % (uint64_t)(nblk - 1)) : 0;
    if ((J->kind == K_CLI_ABORT || J->kind == K_CLI_KILL) && nblk == 1)
      J->kind = K_NORMAL;
    ASSERT_EQ(pthread_create(&t[i], NULL, soak_main, J), 0);
  }
  int failed = 0;
  for (int i = 0; i < nsets; i++) {
    pthread_join(t[i], NULL);
    struct soak_job *J = &jobs[i];
    if (J->L.why[0]) {
      fprintf(stderr,
              "soak: cycle %llu set %d (%s%s at %d, %d devices, %d blocks): "
              "%s\n",
              (unsigned long long)cycle, i, kind_name[J->kind],
              J->in_restore ? " in restore" : " in backup", J->at, J->L.ndev,
              J->L.nblk, J->L.why);
      failed = 1;
    }
    lset_free(&J->L);
  }
  free(jobs);
  free(t);
  return failed;
}

/* argv: -s SEED -T SECONDS [-c CYCLE (replay one cycle)] */
HELPER_IMPL(soak) {
  int seconds = 60;
  long long only = -1;
  soak_seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "-s") == 0)
      soak_seed = strtoull(argv[i + 1], NULL, 0);
    else if (strcmp(argv[i], "-T") == 0)
      seconds = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "-c") == 0)
      only = atoll(argv[i + 1]);
    else {
      fprintf(stderr, "usage: soak -s SEED -T SECONDS [-c CYCLE]\n");
      return 2;
    }
  }
  printf("soak: seed %llu, %d s%s\n", (unsigned long long)soak_seed, seconds,
         only >= 0 ? " (one cycle)" : "");
  fflush(stdout);
  atexit(soak_replay_hint);
  rt_probe base;
  rt_probe_shared_only = 1;
  rt_probe_take(&base);
  int64_t end = now_ms() + (int64_t)seconds * 1000;
  uint64_t cycle = only >= 0 ? (uint64_t)only : 0;
  uint64_t n = 0;
  do {
    soak_cycle = cycle;
    soak_in_cycle = 1;
    if (soak_one_cycle(cycle) != 0) exit(1);
    /* Each cycle gives back what it took. */
    char what[64];
    snprintf(what, sizeof what, "soak cycle %llu", (unsigned long long)cycle);
    if (n == 0) {
      /* The first cycle grows stacks and arenas that stay: re-base. */
      rt_probe_take(&base);
    } else {
      rt_probe_expect(&base, what);
    }
    soak_in_cycle = 0;
    n++;
    cycle++;
    if (n % 50 == 0) {
      printf("soak: %llu cycles\n", (unsigned long long)n);
      fflush(stdout);
    }
  } while (only < 0 && now_ms() < end);
  printf("soak: %llu cycles passed (seed %llu)\n", (unsigned long long)n,
         (unsigned long long)soak_seed);
  return 0;
}
