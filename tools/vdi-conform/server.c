// SPDX-License-Identifier: Apache-2.0
/*
 * server.c - one phase of a scenario played as SQL Server: attach to the
 * client's set, configure it, open the devices, and send each device its
 * commands from its own thread while the completion agent runs, as the
 * engine does (script.c says what is sent, window.c checks what comes
 * back).  The names come from {set}, or from the statement the client ran
 * through {engine}; a scenario that needs a feature the client did not ask
 * for (disk-like devices, snapshots) is not applicable.  The first problem
 * found is the evidence; the set is then aborted so that neither side
 * waits any longer.
 */
#include "window.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct agent {
  vdi_srvset_t *srv;
  int rc;
};

static void *agent_main(void *arg) {
  struct agent *a = arg;
  a->rc = vdi_srv_execute_completion_agent(a->srv);
  return NULL;
}

/* How many processes of the client's group have the set's memory mapped
 * (libvdi's control segment is the memfd "vdi-control"): more than one
 * means secondary clients.  Sampled while the devices run. */
struct watch {
  struct phase *p;
  _Atomic int stop;
};

static void count_mapping(long pid, const char *comm, void *arg) {
  (void)comm;
  char path[64], line[512];
  snprintf(path, sizeof path, "/proc/%ld/maps", pid);
  FILE *f = fopen(path, "r");
  if (!f) return;
  int found = 0;
  while (!found && fgets(line, sizeof line, f))
    found = strstr(line, "/memfd:vdi-control") != NULL;
  fclose(f);
  *(int *)arg += found;
}

static int group_mapping_set(pid_t pgid) {
  int n = 0;
  group_each(pgid, count_mapping, &n);
  return n;
}

static void *watch_main(void *arg) {
  struct watch *w = arg;
  while (!w->stop) {
    int n = group_mapping_set(w->p->cl->pid);
    if (n > w->p->client_procs) w->p->client_procs = n;
    sleep_ms(5);
  }
  return NULL;
}

/* ------------------------------------------------------------ the phase */

static void phase_fail(struct phase *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void phase_fail(struct phase *p, const char *fmt, ...) {
  if (p->failure[0]) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->failure, sizeof p->failure, fmt, ap);
  va_end(ap);
}

/* Attach to the client's set, waiting for it to exist. */
static int attach(struct phase *p, vdi_srvset_t *srv) {
  char desc[160];
  int64_t start = mono_ms();
  for (;;) {
    int rc = vdi_srv_open(srv, NULL, p->set_name);
    if (rc == 0) return 0;
    if (client_poll(p->cl)) {
      client_describe(p->cl, desc, sizeof desc);
      phase_fail(p, "the client %s before set '%s' could be opened", desc,
                 p->set_name);
      return -1;
    }
    if (mono_ms() >= p->deadline_ms) {
      phase_fail(p,
                 "set '%s' did not appear within %lld ms (last: %s); does the "
                 "client create the set named by {set}?",
                 p->set_name, (long long)(mono_ms() - start),
                 vdi_error_name(rc));
      return -1;
    }
    sleep_ms(10);
  }
}

static void run_devices(struct phase *p, vdi_srvset_t *srv, VDConfig *req) {
  const struct scenario *sc = p->sc;
  struct run *r = calloc(1, sizeof *r);
  if (!r) abort();
  r->p = p;
  r->sc = sc;
  r->srv = srv;
  r->bytes = scenario_bytes(sc, p->o->quick);
  pthread_mutex_init(&r->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&r->cv, &ca);
  pthread_condattr_destroy(&ca);

  uint32_t feat = p->restore ? VDF_ReadMedia : VDF_WriteMedia;
  if (p->granted_complete) feat |= VDF_CompleteEnabled;
  int rc = vdi_srv_begin_configuration(srv, feat, sc->block, 0, sc->maxxfer, 0);
  if (rc == 0)
    rc = vdi_srv_request_buffers(srv, sc->maxxfer, 0,
                                 sc->nbuf * (uint32_t)p->ndev);
  if (rc == 0) rc = vdi_srv_end_configuration(srv);
  if (rc != 0) {
    phase_fail(p,
               "configuring the set failed with %s (client asked features "
               "0x%x, alignment %u, prefix zone %u)",
               vdi_error_name(rc), req->features, req->alignment,
               req->prefixZoneSize);
    vdi_srv_signal_abort(srv);
    goto out;
  }
  uint32_t align = req->alignment > sc->block ? req->alignment : sc->block;
  int nopen = 0;
  for (int i = 0; i < p->ndev; i++) {
    struct dev *d = &r->devs[i];
    d->r = r;
    d->i = i;
    stream_init(&d->st, p->o, sc->name, i, p->ndev);
    d->nslots = sc->nbuf;
    d->slots = calloc(sc->nbuf, sizeof *d->slots);
    if (!d->slots) abort();
    rc = vdi_srv_open_device(srv, p->dev_names[i], &d->sd);
    if (rc != 0) {
      phase_fail(p, "opening device '%s' failed with %s", p->dev_names[i],
                 vdi_error_name(rc));
      vdi_srv_signal_abort(srv);
      goto free_devs;
    }
    nopen++;
    for (uint32_t k = 0; k < sc->nbuf; k++) {
      rc = vdi_srv_allocate_buffer(srv, &d->slots[k].buf, sc->maxxfer, 0);
      if (rc != 0) {
        phase_fail(p, "AllocateBuffer failed with %s", vdi_error_name(rc));
        vdi_srv_signal_abort(srv);
        goto free_devs;
      }
      /* Every buffer handed to the client starts where it asked (the
       * server's own part of the contract; its prefix zone lies before
       * and the kit never writes there). */
      if (align && (uintptr_t)d->slots[k].buf % align != 0) {
        phase_fail(p,
                   "kit: buffer %p is not aligned to the %u bytes the client "
                   "asked (libvdi's AllocateBuffer)",
                   (void *)d->slots[k].buf, align);
        vdi_srv_signal_abort(srv);
        goto free_devs;
      }
    }
  }
  struct agent ag = {.srv = srv};
  pthread_t agent_th, watch_th;
  struct watch w = {.p = p};
  if (sc->secondary && pthread_create(&watch_th, NULL, watch_main, &w) != 0)
    abort();
  if (pthread_create(&agent_th, NULL, agent_main, &ag) != 0) abort();
  for (int i = 0; i < p->ndev; i++)
    if (pthread_create(&r->devs[i].th, NULL, script_dev_main, &r->devs[i]) != 0)
      abort();
  for (int i = 0; i < p->ndev; i++)
    pthread_join(r->devs[i].th, NULL);
  int all_closed = 1;
  for (int i = 0; i < p->ndev; i++)
    all_closed &= r->devs[i].closed;
  if (!all_closed) vdi_srv_signal_abort(srv);
  pthread_join(agent_th, NULL);
  if (sc->secondary) {
    w.stop = 1;
    pthread_join(watch_th, NULL);
    if (p->client_procs < 2) {
      /* Everything was serviced from one process: what this scenario is
       * about never happened (stripes_4 covers such a client). */
      p->not_applicable = 1;
      snprintf(p->note, sizeof p->note,
               "one process of the client mapped the set: it does not use "
               "OpenInSecondary");
    }
  }
  if (ag.rc == VD_E_PROTOCOL)
    phase_fail(p, "the client broke the protocol (VD_E_PROTOCOL: a completion "
                  "for no outstanding command, or more bytes than asked)");
  if (all_closed && ag.rc == 0) p->completed_ok = 1;
free_devs:
  (void)nopen;
  for (int i = 0; i < p->ndev; i++)
    free(r->devs[i].slots);
out:
  pthread_cond_destroy(&r->cv);
  pthread_mutex_destroy(&r->mu);
  free(r);
}

int phase_devices(const struct phase *p) {
  const struct scenario *sc = p->sc;
  return p->restore && sc->restore_ndev ? sc->restore_ndev : sc->ndev;
}

void server_phase(struct phase *p) {
  const struct scenario *sc = p->sc;
  char why[512];
  if (p->engine_mode) {
    char op[32];
    if (engine_wait_request(p->dir, p->cl, p->deadline_ms, op, sizeof op,
                            p->dev_names, &p->ndev, why, sizeof why) != 0) {
      phase_fail(p, "%s", why);
      return;
    }
    const char *want = p->restore ? "RESTORE" : "BACKUP";
    if (strcmp(op, want) != 0) {
      phase_fail(p, "the client ran a %s statement in the %s phase", op,
                 p->restore ? "restore" : "backup");
      engine_verdict(p->dir, 1);
      return;
    }
    snprintf(p->set_name, sizeof p->set_name, "%s", p->dev_names[0]);
  } else {
    p->ndev = phase_devices(p);
    for (int i = 0; i < p->ndev; i++) {
      if (i == 0)
        snprintf(p->dev_names[i], sizeof p->dev_names[i], "%s", p->set_name);
      else {
        /* The set name and the decimal index; the scenarios keep it within
         * the interface's 95 bytes. */
        char tmp[VDI_MAX_NAME + 16];
        snprintf(tmp, sizeof tmp, "%s%d", p->set_name, i);
        snprintf(p->dev_names[i], sizeof p->dev_names[i], "%.95s", tmp);
      }
    }
  }
  /* A client that names its own devices may present every media family
   * where the scenario offers fewer: that is right too. */
  int fewer_ok = p->engine_mode && p->restore && sc->restore_ndev &&
                 p->ndev >= sc->restore_ndev && p->ndev <= sc->ndev;
  if (fewer_ok && p->ndev == sc->ndev)
    snprintf(p->kept.detail, sizeof p->kept.detail,
             "the client presented all %d media families itself; ", p->ndev);
  if (p->ndev != phase_devices(p) && !fewer_ok) {
    phase_fail(p,
               "the client named %d devices; this scenario uses %d "
               "({devices} on the command line)",
               p->ndev, phase_devices(p));
    if (p->engine_mode) engine_verdict(p->dir, 1);
    return;
  }
  if (sc->fault == F_SLOW && !p->restore) {
    int64_t until = mono_ms() + p->o->slow_ms;
    while (mono_ms() < until && mono_ms() < p->deadline_ms)
      sleep_ms(20);
  }
  vdi_srvset_t *srv = NULL;
  if (vdi_srv_new(&srv) != 0) abort();
  if (attach(p, srv) != 0) goto out;
  p->attached = 1;
  VDConfig req;
  int rc = vdi_srv_get_configuration(srv, &req);
  if (rc != 0) {
    phase_fail(p, "GetConfiguration (server) failed with %s",
               vdi_error_name(rc));
    vdi_srv_signal_abort(srv);
    goto close;
  }
  p->client_features = req.features;
  if ((int)req.deviceCount != p->ndev) {
    phase_fail(p,
               "the client created the set with %u devices; the scenario "
               "uses %d ({devices})",
               req.deviceCount, p->ndev);
    vdi_srv_signal_abort(srv);
    goto close;
  }
  p->server_timeout_ms = req.serverTimeOut;
  p->prefix_zone = req.prefixZoneSize;
  /* A feature the scenario needs and the client did not ask for: the
   * scenario does not apply (the set is released by an abort). */
  const char *missing =
      sc->disk && !(req.features & VDF_RandomAccess)
          ? "VDF_RandomAccess (disk-like devices)"
      : sc->snapshot && !(req.features & VDF_SnapshotPrepare)
          ? "VDF_SnapshotPrepare"
      : sc->tape && (req.features & VDF_LikeTape) != VDF_LikeTape
          ? "VDF_LikeTape (tape-like devices)"
          : NULL;
  int64_t left = p->deadline_ms - mono_ms();
  if (missing)
    snprintf(p->note, sizeof p->note,
             "the client asked for features 0x%x, without %s", req.features,
             missing);
  else if (sc->prefix && !req.prefixZoneSize && !req.alignment)
    snprintf(p->note, sizeof p->note,
             "the client asked for no prefix zone and no alignment "
             "(prefixZoneSize 0, alignment 0)");
  else if (sc->fault == F_TIMEOUT && !req.serverTimeOut)
    snprintf(p->note, sizeof p->note,
             "the client's serverTimeOut is 0 (no limit)");
  else if (sc->fault == F_TIMEOUT &&
           2 * (int64_t)req.serverTimeOut + 5000 > left - 5000)
    snprintf(p->note, sizeof p->note,
             "the client's serverTimeOut (%u ms) is too long to wait out "
             "twice within --timeout (%d s)",
             req.serverTimeOut, p->o->timeout_s);
  if (p->note[0]) {
    p->not_applicable = 1;
    vdi_srv_signal_abort(srv);
    goto close;
  }
  p->granted_complete = !p->restore && sc->complete == C_GRANT &&
                        (req.features & VDF_RequestComplete) != 0;
  run_devices(p, srv, &req);
  if (sc->close_check && p->completed_ok && !p->failure[0]) {
    /* The set stays open on this side until the client has ended, so
     * that what it reported of its Close can still be read. */
    if (p->engine_mode) engine_verdict(p->dir, 0);
    while (!client_poll(p->cl) && mono_ms() < p->deadline_ms)
      sleep_ms(10);
    p->client_closed = vdi_srv_client_closed(srv);
  }
close:
  rc = vdi_srv_close(srv);
  (void)rc;
out:
  vdi_srv_free(srv);
}
