/* SPDX-License-Identifier: Apache-2.0 */
/*
 * transfer.c - the CLIENT side of one BACKUP or RESTORE: create the virtual
 * device set, start the engine, wait for its configuration, and service
 * every device in its own thread until the engine closes them.
 *
 * Order matters: the set exists before the engine starts (the engine
 * attaches to it by name).  Waiting for the configuration is done in 1 s
 * slices while watching the engine: if it ends first, the statement failed
 * before the transfer began and the set is aborted.  Every device gets its
 * own thread because the engine may wait on one device while we would be
 * blocked on another.  SIGINT/SIGTERM/SIGHUP, an engine that dies, or a
 * device we cannot serve all end in vdi_set_signal_abort: the engine's
 * statement then fails and nothing is left that looks like a backup.
 */
#include "app.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------------------------ signals */

static pthread_mutex_t sig_mu = PTHREAD_MUTEX_INITIALIZER;
static void (*sig_fn)(void *, int);
static void *sig_ctx;
static volatile int sig_caught;

static void *signal_main(void *arg) {
  sigset_t *set = arg;
  for (;;) {
    int sig = 0;
    if (sigwait(set, &sig) != 0) continue;
    pthread_mutex_lock(&sig_mu);
    if (!sig_caught) sig_caught = sig;
    if (sig_fn) sig_fn(sig_ctx, sig);
    pthread_mutex_unlock(&sig_mu);
  }
  return NULL;
}

void signals_init(void) {
  static sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  /* Blocked here, before any other thread exists, so every thread inherits
   * the mask and only the watcher takes them. */
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  /* A reader that goes away (vdi backup --to - | head) is an I/O error on
   * that stripe, not a silent death that leaves temporary files. */
  signal(SIGPIPE, SIG_IGN);
  pthread_t th;
  if (pthread_create(&th, NULL, signal_main, &set) == 0) pthread_detach(th);
}

int signals_caught(void) {
  pthread_mutex_lock(&sig_mu);
  int s = sig_caught;
  pthread_mutex_unlock(&sig_mu);
  return s;
}

void signals_on(void (*fn)(void *ctx, int sig), void *ctx) {
  pthread_mutex_lock(&sig_mu);
  sig_fn = fn;
  sig_ctx = ctx;
  pthread_mutex_unlock(&sig_mu);
}

/* ------------------------------------------------------------ names */

void transfer_names(struct transfer *t, int ndev) {
  char hex[17];
  app_random_hex(hex, 16);
  t->ndev = ndev;
  snprintf(t->set_name, sizeof t->set_name, "vdi-%s", hex);
  snprintf(t->dev_names[0], sizeof t->dev_names[0], "%s", t->set_name);
  for (int i = 1; i < ndev; i++)
    app_path(t->dev_names[i], sizeof t->dev_names[i], "%s-%d", t->set_name, i);
}

void transfer_device_clause(const struct transfer *t, char *buf, size_t n) {
  size_t off = 0;
  buf[0] = 0;
  for (int i = 0; i < t->ndev && off < n; i++) {
    int w = snprintf(buf + off, n - off, "%sVIRTUAL_DEVICE='%s'", i ? ", " : "",
                     t->dev_names[i]);
    if (w < 0) break;
    off += (size_t)w;
  }
}

/* ------------------------------------------------------------ devices */

struct run {
  struct transfer *t;
  vdi_set_t *set;
  pthread_mutex_t mu; /* guards set against the signal and reaper threads */
  int set_live;
  int devices_done;
};

struct devctx {
  struct run *r;
  int i;
  vdi_device_t *dev;
  pthread_t th;
};

int app_aborting;

static void abort_set(struct run *r) {
  __atomic_store_n(&app_aborting, 1, __ATOMIC_RELAXED);
  pthread_mutex_lock(&r->mu);
  if (r->set_live) vdi_set_signal_abort(r->set);
  pthread_mutex_unlock(&r->mu);
}

static void on_signal(void *ctx, int sig) {
  (void)sig;
  abort_set(ctx);
}

static void on_engine_exit(void *ctx, int status) {
  struct run *r = ctx;
  /* A failed statement will never close the devices: stop waiting now.  A
   * successful one has closed them already, and aborting would turn those
   * normal ends into aborts. */
  if (status != 0) abort_set(r);
}

static void dev_fail(struct transfer *t, int i, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void dev_fail(struct transfer *t, int i, const char *fmt, ...) {
  if (t->dev_err[i][0]) return; /* keep the first cause */
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(t->dev_err[i], sizeof t->dev_err[i], fmt, ap);
  va_end(ap);
}

static uint32_t win32_of_errno(int err) {
  switch (err) {
  case ENOSPC:
  case EDQUOT:
  case EFBIG:
    return ERROR_DISK_FULL;
  default:
    return ERROR_IO_DEVICE;
  }
}

/* One handler per command: the completion code, bytes done in *bytes. */
static uint32_t dev_write(struct transfer *t, int i, VDC_Command *cmd,
                          size_t size, uint32_t *bytes) {
  struct stripe *s = &t->stripes[i];
  if (t->mode != XFER_BACKUP) return ERROR_NOT_SUPPORTED;
  int err = stripe_write(s, cmd->buffer, size);
  if (err != 0) {
    dev_fail(t, i, "writing stripe %d (%s): %s", i, s->name, strerror(-err));
    return win32_of_errno(-err);
  }
  *bytes = (uint32_t)size;
  progress_add(t->progress, size);
  return ERROR_SUCCESS;
}

static uint32_t dev_read(struct transfer *t, int i, VDC_Command *cmd,
                         size_t size, uint32_t *bytes) {
  struct stripe *s = &t->stripes[i];
  if (t->mode == XFER_BACKUP) return ERROR_NOT_SUPPORTED;
  size_t got = 0;
  int err = stripe_read(s, cmd->buffer, size, &got);
  *bytes = (uint32_t)got;
  progress_add(t->progress, got);
  if (err != 0) {
    /* A sealed chunk that fails its authentication: the stripe was
     * changed (seal.c said which chunk). */
    if (err == -EBADMSG) t->damaged = 1;
    dev_fail(t, i, "reading stripe %d (%s): %s%s", i, s->name, strerror(-err),
             err == -EBADMSG ? ": the backup is damaged" : "");
    return ERROR_IO_DEVICE;
  }
  if (s->check_feed && s->bytes > s->expect) {
    t->damaged = 1;
    dev_fail(t, i,
             "stripe %d (%s): longer than the manifest's %llu bytes: the "
             "backup is damaged",
             i, s->name, (unsigned long long)s->expect);
    return ERROR_CRC;
  }
  if (got == size) return ERROR_SUCCESS;
  /* The end of the stripe: every byte fed must be the manifest's.  The
   * engine asks for the end after the stream's trailer and replaces
   * nothing before it has it, so a stripe that fails here restores
   * nothing (the check before the engine started read the headers only,
   * ops.c). */
  if (s->check_feed && (s->bytes != s->expect || s->crc != s->expect_crc)) {
    t->damaged = 1;
    dev_fail(t, i,
             "stripe %d (%s): %llu bytes, CRC-32C %08x; the manifest says "
             "%llu, %08x: the backup is damaged",
             i, s->name, (unsigned long long)s->bytes, (unsigned)s->crc,
             (unsigned long long)s->expect, (unsigned)s->expect_crc);
    return ERROR_CRC;
  }
  return ERROR_HANDLE_EOF;
}

static uint32_t dev_sync(struct transfer *t, int i, int complete) {
  struct stripe *s = &t->stripes[i];
  if (t->mode != XFER_BACKUP) return ERROR_SUCCESS;
  int err = stripe_sync(s);
  if (err != 0) {
    dev_fail(t, i, "syncing stripe %d (%s): %s", i, s->name, strerror(-err));
    return win32_of_errno(-err);
  }
  if (complete) s->finalized = 1;
  return ERROR_SUCCESS;
}

static void dev_lost(struct transfer *t, int i, int rc) {
  dev_fail(t, i, "device %d: %s", i,
           rc == VD_E_ABORT ? "the transfer was aborted" : vdi_strerror(rc));
}

static void *device_main(void *arg) {
  struct devctx *d = arg;
  struct transfer *t = d->r->t;
  int failed = 0;
  for (;;) {
    VDC_Command *cmd = NULL;
    int rc = vdi_dev_get_command(d->dev, -1, &cmd);
    if (rc == VD_E_CLOSE) break;
    if (rc != 0) {
      dev_lost(t, d->i, rc);
      failed = 1;
      break;
    }
    uint32_t code, bytes = 0;
    size_t size = cmd->size > 0 ? (size_t)cmd->size : 0;
    switch (cmd->commandCode) {
    case VDC_Write:
      code = dev_write(t, d->i, cmd, size, &bytes);
      break;
    case VDC_Read:
      code = dev_read(t, d->i, cmd, size, &bytes);
      break;
    case VDC_Flush:
    case VDC_Complete:
      code = dev_sync(t, d->i, cmd->commandCode == VDC_Complete);
      break;
    case VDC_ClearError:
      /* A failed write left the file as before it (stripe_write), so the
       * device is consistent again. */
      code = ERROR_SUCCESS;
      break;
    default:
      code = ERROR_NOT_SUPPORTED;
      break;
    }
    rc = vdi_dev_complete_command(d->dev, cmd, code, bytes, 0);
    if (rc != 0) {
      dev_lost(t, d->i, rc);
      failed = 1;
      break;
    }
  }
  /* No VDC_Complete (the engine did not grant it): harden at close. */
  if (!failed && t->mode == XFER_BACKUP && !t->stripes[d->i].finalized &&
      dev_sync(t, d->i, 1) != ERROR_SUCCESS)
    failed = 1;
  if (!failed && t->dev_err[d->i][0]) failed = 1;
  t->dev_ok[d->i] = !failed;
  if (failed) abort_set(d->r);
  return NULL;
}

/* ------------------------------------------------------------ the run */

static const char *engine_reason(struct engine *e) {
  static char buf[96];
  if (e->last_error[0]) return e->last_error;
  if (e->exited && WIFSIGNALED(e->status)) {
    snprintf(buf, sizeof buf, "killed by signal %d (%s)", WTERMSIG(e->status),
             strsignal(WTERMSIG(e->status)));
    return buf;
  }
  if (e->last_line[0]) return e->last_line;
  return "no message";
}

/* Make the set and start the engine on it.  0, or -1 (reported; the
 * engine may have started and must still be waited for). */
static int run_setup(struct run *r, struct engine *e) {
  struct transfer *t = r->t;
  VDConfig cfg;
  int rc = vdi_set_new(&r->set);
  if (rc != 0) {
    app_err("cannot make a device set: %s", vdi_strerror(rc));
    r->set = NULL;
    return -1;
  }
  memset(&cfg, 0, sizeof cfg);
  cfg.deviceCount = (uint32_t)t->ndev;
  /* Pipe-like devices (a stream per stripe) and a final VDC_Complete, so
   * that we finalize the media before the engine calls the backup done. */
  cfg.features = VDF_LikePipe | VDF_RequestComplete;
  rc = vdi_set_create(r->set, t->set_name, &cfg);
  if (rc != 0) {
    app_err("cannot create device set %s: %s", t->set_name, vdi_strerror(rc));
    vdi_set_free(r->set);
    r->set = NULL;
    return -1;
  }
  pthread_mutex_lock(&r->mu);
  r->set_live = 1;
  pthread_mutex_unlock(&r->mu);
  signals_on(on_signal, r);
  if (signals_caught()) abort_set(r);

  e->relay_to_out = t->relay_to;
  e->discard_out = t->relay_to == NULL;
  e->on_exit = on_engine_exit;
  e->on_exit_ctx = r;
  if (app_verbose) {
    pthread_mutex_lock(&app_out_lock);
    fprintf(stderr, "%s: running %s%s%s -b -Q \"%s\"\n", APP_NAME, t->vdisql,
            t->instance ? " -S " : "", t->instance ? t->instance : "",
            t->statement);
    pthread_mutex_unlock(&app_out_lock);
  }
  if (engine_start(e, t->vdisql, t->instance, t->statement) != 0) {
    abort_set(r);
    return -1;
  }
  t->engine_started = 1;
  return 0;
}

/* Wait for the engine to configure the set, watching it meanwhile.  0 or
 * -1 (reported). */
static int run_wait_config(struct run *r, struct engine *e) {
  struct transfer *t = r->t;
  VDConfig cfg;
  int rc;
  for (;;) {
    rc = vdi_set_get_configuration(r->set, 1000, &cfg);
    if (rc == 0) break;
    if (rc == VD_E_TIMEOUT) {
      if (engine_exited(e) || signals_caught()) abort_set(r);
      continue;
    }
    break;
  }
  if (rc != 0) {
    if (!signals_caught()) {
      engine_wait(e, 2000);
      if (!engine_exited(e))
        app_err("device set %s was not configured: %s", t->set_name,
                vdi_strerror(rc));
    }
    return -1;
  }
  t->configured = 1;
  uint32_t want = t->mode == XFER_BACKUP ? VDF_WriteMedia : VDF_ReadMedia;
  if (!(cfg.features & want) || cfg.deviceCount != (uint32_t)t->ndev) {
    app_err("the engine configured the set for another kind of transfer");
    abort_set(r);
    return -1;
  }
  return 0;
}

/* Open every device and serve it in its own thread until it closes.
 * Returns how many were started (all joined). */
static int run_service(struct run *r) {
  struct transfer *t = r->t;
  struct devctx dev[APP_MAX_STRIPES];
  int started = 0;
  for (int i = 0; i < t->ndev; i++) {
    dev[i].r = r;
    dev[i].i = i;
    dev[i].dev = NULL;
    int rc = vdi_set_open_device(r->set, t->dev_names[i], &dev[i].dev);
    if (rc != 0) {
      if (rc != VD_E_ABORT)
        app_err("cannot open device %s: %s", t->dev_names[i], vdi_strerror(rc));
      abort_set(r);
      break;
    }
    if (pthread_create(&dev[i].th, NULL, device_main, &dev[i]) != 0) {
      app_err("cannot start a device thread");
      abort_set(r);
      break;
    }
    started++;
  }
  for (int i = 0; i < started; i++)
    pthread_join(dev[i].th, NULL);
  return started;
}

/* The engine's verdict, the set closed, and one account of what failed.
 * 0 when every device ended normally and the statement succeeded. */
static int run_verdict(struct run *r, struct engine *e, int ndev_started) {
  struct transfer *t = r->t;
  /* The engine's verdict is half of the result: wait for it.  After an
   * abort it should end at once; if it does not, it is stuck, and killed. */
  if (t->engine_started) {
    int ok = 1;
    for (int i = 0; i < t->ndev; i++)
      ok &= t->dev_ok[i];
    if (!engine_wait(e, ok && t->configured ? -1 : 10000)) {
      app_err("the engine did not end after the abort; killing it");
      engine_kill(e);
    }
  }
  signals_on(NULL, NULL);
  if (r->set) {
    pthread_mutex_lock(&r->mu);
    r->set_live = 0;
    pthread_mutex_unlock(&r->mu);
    vdi_set_close(r->set);
    vdi_set_free(r->set);
  }
  if (t->engine_started) t->engine_status = engine_finish(e);
  t->interrupted = signals_caught();

  int devs_ok = t->configured && ndev_started == t->ndev;
  for (int i = 0; i < t->ndev && devs_ok; i++)
    devs_ok = t->dev_ok[i];
  int engine_failed = t->engine_started && t->engine_status != 0;
  /* The engine's own messages, once, whatever happened. */
  int told = t->engine_started ? engine_report(e, engine_failed) : 0;
  if (t->interrupted) {
    app_err("interrupted by signal %d (%s); the transfer was aborted",
            t->interrupted, strsignal(t->interrupted));
  } else if (t->configured) {
    for (int i = 0; i < t->ndev; i++)
      if (t->dev_err[i][0] && !strstr(t->dev_err[i], "aborted"))
        app_err("%s", t->dev_err[i]);
  }
  if (engine_failed && !t->interrupted && !told)
    app_err("vdisql failed (exit status %d): %s", t->engine_status,
            engine_reason(e));
  else if (t->configured && !devs_ok && !t->interrupted &&
           t->engine_status == 0)
    app_err("the transfer failed although the engine reported success");
  /* The engine refused or failed on its own: it said so and exited (not a
   * crash, nor a failure of one of our devices). */
  t->engine_failed =
      engine_failed && !t->interrupted && (devs_ok || !t->configured);
  return devs_ok && t->engine_status == 0 && !t->interrupted ? 0 : -1;
}

int transfer_run(struct transfer *t) {
  struct run r = {.t = t};
  struct engine e = {0};
  int ndev_started = 0;
  pthread_mutex_init(&r.mu, NULL);
  t->engine_status = -1;
  t->damaged = 0;
  for (int i = 0; i < t->ndev; i++) {
    t->dev_ok[i] = 0;
    t->dev_err[i][0] = 0;
  }
  if (run_setup(&r, &e) == 0 && run_wait_config(&r, &e) == 0)
    ndev_started = run_service(&r);
  if (!r.set) {
    pthread_mutex_destroy(&r.mu);
    return -1;
  }
  int result = run_verdict(&r, &e, ndev_started);
  pthread_mutex_destroy(&r.mu);
  return result;
}

int transfer_exit_status(const struct transfer *t) {
  if (t->interrupted) return 128 + t->interrupted;
  if (t->damaged) return EXIT_DAMAGED;
  return t->engine_failed ? EXIT_ENGINE : EXIT_FAIL;
}

int transfer_run_reading(struct transfer *t, struct progress *prog,
                         const char *verb, int nstripes) {
  int rc = transfer_run(t);
  progress_stop(prog);
  if (rc != 0) return transfer_exit_status(t);
  char what[64];
  snprintf(what, sizeof what, "%s complete", verb);
  progress_summary(prog, what, nstripes);
  return EXIT_OK;
}
