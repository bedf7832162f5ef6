// SPDX-License-Identifier: Apache-2.0
/*
 * window.h - the server's side of one device, shared by window.c (the
 * commands in flight, sent and retired in order, each completion checked)
 * and script.c (what SQL Server sends on the device, scenario by
 * scenario).  Internal to vdi-conform.
 */
#ifndef VDI_CONFORM_WINDOW_H
#define VDI_CONFORM_WINDOW_H

#include "conform.h"

#include <pthread.h>

struct run;

/* One command in flight.  Slots are reused in send order (seq % nslots),
 * so retiring in send order frees exactly the slot the next send needs. */
struct slot {
  VDS_Command cmd;
  uint8_t *buf;
  struct dev *d;
  uint64_t seq, off;
  uint32_t code, size;
  /* Written by the completion agent, read by the device thread; both
   * under run.mu. */
  int done, ncompl;
  uint32_t rcode, rbytes;
  uint64_t rpos; /* outPosition: GetPosition / SetPosition */
};

struct dev {
  struct run *r;
  int i;
  vdi_srvdev_t *sd;
  struct slot *slots;
  uint32_t nslots;
  uint64_t next_seq, retire_seq;
  struct stream st;
  uint64_t read_off; /* restore: bytes checked so far */
  int eof;
  int closed;
  int served; /* a first command completed */
  /* Tape-like restore: the file being read ends at limit with a filemark
   * (0: the backup's end, ERROR_HANDLE_EOF); how the kit got there. */
  uint64_t limit;
  char where[96];
  pthread_t th;
};

struct run {
  struct phase *p;
  const struct scenario *sc;
  vdi_srvset_t *srv;
  uint64_t bytes; /* per device, after --quick */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int stop;          /* a failure or a fault: every device stops */
  int served;        /* devices that completed a first command */
  int aborted_by_us; /* our SignalAbort: ERROR_OPERATION_ABORTED expected */
  struct dev devs[VDI_MAX_DEVICES];
};

/* Record the first problem, stop every device and abort the set, so that
 * a client blocked in GetCommand and our own threads stop waiting. */
void win_fail(struct run *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* How many devices have completed a first command. */
int win_served(struct run *r);
/* A failure or a fault stopped the phase. */
int win_stopped(struct run *r);
/* Our own SignalAbort (the fault): ERROR_OPERATION_ABORTED is expected. */
void win_abort(struct run *r);
/* Commands sent and not yet retired. */
uint32_t win_inflight(const struct dev *d);
/* Send one command from the next slot (the caller made sure it is
 * free).  0, or the SendCommand code (VD_E_IO_ERROR is left to the
 * caller, who drains to learn why). */
int win_send(struct dev *d, uint32_t code, uint32_t size, uint64_t off);
/* Wait for the oldest command and check it: 0 ok, 1 stop quietly (our
 * own abort), -1 a failure (recorded). */
int win_retire(struct dev *d);
/* Retire everything in flight: 0, or what win_retire said. */
int win_drain(struct dev *d);
/* A command sent alone, after everything before it completed. */
int win_barrier(struct dev *d, uint32_t code);

/* The outPosition of the command retired last. */
uint64_t win_last_pos(const struct dev *d);

/* script.c: the body of a device's thread. */
void *script_dev_main(void *arg);
/* Read from byte `from` to the end of a file at `to` (a filemark, or the
 * end of the data), one read at a time, then one more read that must say
 * so; then ClearError.  0, or -1 (recorded). */
int script_read_span(struct dev *d, uint64_t from, uint64_t to);

/* position.c: GetPosition, SetPosition and Discard as SQL Server sends
 * them, checked against the client's features.  0 to go on, else stop. */
int position_backup_begin(struct dev *d);
int position_backup_mid(struct dev *d, uint64_t off);
void position_restore(struct dev *d);
/* The feature a positioning command needs (VDF_Discard, or VDF_Position
 * or VDF_RandomAccess), and its name. */
uint32_t position_feature(uint32_t code, const char **name);
/* Whether the client advertised what a positioning command needs. */
int position_has(const struct phase *p, uint32_t code);

#endif
