/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-com-peer.c - the server side of the COM tests: a helper process that
 * plays the database engine through IServerVirtualDeviceSet2 /
 * IServerVirtualDevice only (created with vdi_CoCreateInstance), and the
 * data pattern both sides agree on.  Used by test-com-backup.c and
 * test-com-cpp.c; the declarations they need are in each of them.
 *
 *   com_server SET NDEV BYTES MODE
 *     MODE "backup": writes BYTES bytes of com_pattern(dev) to each device
 *       in commands of varied sizes, flushes, closes; exit 0 if every
 *       command completed with ERROR_SUCCESS and its full size.
 *     MODE "abort": sends one write on device 0 and expects the client to
 *       abort: the write completes with ERROR_OPERATION_ABORTED, the agent
 *       returns VD_E_ABORT, a later send fails with VD_E_ABORT.
 */
#include "task.h"

#include "vdi_com.h"

#include <pthread.h>
#include <semaphore.h>
#include <errno.h>
#include <time.h>

#define COM_BUFSIZE 65536
#define COM_NBUF    8

/* splitmix64: a reproducible stream, different per device and seed. */
static uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/* Bytes [off, off + n) of device @p dev's stream. */
void com_pattern(uint8_t *buf, uint64_t off, size_t n, unsigned dev) {
  for (size_t k = 0; k < n; k++) {
    uint64_t i = off + k;
    uint64_t w = mix64((i >> 3) ^ ((uint64_t)dev << 52));
    buf[k] = (uint8_t)(w >> (8 * (i & 7)));
  }
}

/* ASCII to wide; the tests' names are ASCII. */
void com_widen(const char *s, wchar_t *out, size_t cap) {
  size_t i = 0;
  for (; s[i] && i + 1 < cap; i++)
    out[i] = (wchar_t)(unsigned char)s[i];
  out[i] = 0;
}

/* The name of device @p i: the set's name, then "<set>_<i>". */
void com_device_name(const char *set, unsigned i, char *out, size_t cap) {
  if (i == 0)
    snprintf(out, cap, "%s", set);
  else
    snprintf(out, cap, "%s_%u", set, i);
}

/* ------------------------------------------------------------ the server */

struct srv_state {
  IServerVirtualDeviceSet2 *vss;
  sem_t free_bufs; /* buffers not in flight */
  int failures;    /* completions that were not what was expected */
  int agent_rc;
  int last_code; /* completionCode of the last completion */
};

struct job {
  VDS_Command cmd;
  struct srv_state *st;
  DWORD expect_code;
  DWORD size;
};

/* Runs on the agent thread (or at once in the sender on a failed send). */
static void on_complete(VDS_Command *cmd) {
  struct job *j = (struct job *)cmd->completionContext;
  struct srv_state *st = j->st;
  if (cmd->completionCode != j->expect_code ||
      (j->expect_code == ERROR_SUCCESS && cmd->bytesTransferred != j->size)) {
    fprintf(stderr, "server: command %u completed with %u, %u bytes\n",
            cmd->commandCode, cmd->completionCode, cmd->bytesTransferred);
    __atomic_add_fetch(&st->failures, 1, __ATOMIC_RELAXED);
  }
  __atomic_store_n(&st->last_code, cmd->completionCode, __ATOMIC_RELEASE);
  if (cmd->buffer)
    IServerVirtualDeviceSet2_FreeBuffer(st->vss, cmd->buffer, j->size);
  free(j);
  sem_post(&st->free_bufs);
}

static void *agent_main(void *arg) {
  struct srv_state *st = arg;
  st->agent_rc = IServerVirtualDeviceSet2_ExecuteCompletionAgent(st->vss);
  return NULL;
}

static int sem_wait_ms(sem_t *s, int ms) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += ms / 1000;
  ts.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
  while (sem_timedwait(s, &ts) != 0)
    if (errno != EINTR) return -1;
  return 0;
}

/* Send one command; data commands take a buffer filled from the pattern. */
static int send_one(struct srv_state *st, IServerVirtualDevice *dev, int code,
                    unsigned devno, uint64_t off, DWORD size,
                    DWORD expect_code) {
  if (sem_wait_ms(&st->free_bufs, 10000) != 0) {
    fprintf(stderr, "server: no buffer came back in 10 s\n");
    return -1;
  }
  struct job *j = calloc(1, sizeof *j);
  ASSERT_NOT_NULL(j);
  j->st = st;
  j->size = size;
  j->expect_code = expect_code;
  j->cmd.commandCode = code;
  j->cmd.size = (int32_t)size;
  if (code == VDC_Write) {
    BYTE *buf = NULL;
    ASSERT_RC(IServerVirtualDeviceSet2_AllocateBuffer(st->vss, &buf, size, 0),
              0);
    ASSERT_EQ(IServerVirtualDeviceSet2_IsSharedBuffer(st->vss, buf), 1);
    com_pattern(buf, off, size, devno);
    j->cmd.buffer = buf;
  }
  VDS_SET_COMPLETION(&j->cmd, on_complete);
  j->cmd.completionContext = (uint8_t *)j;
  return IServerVirtualDevice_SendCommand(dev, &j->cmd);
}

static IServerVirtualDeviceSet2 *open_set(const wchar_t *wname) {
  /* The client may still be creating the set: retry "no such set". */
  int64_t end = now_ms() + 10000;
  for (;;) {
    IServerVirtualDeviceSet2 *vss = NULL;
    HRESULT hr = vdi_CoCreateInstance(
        &CLSID_MSSQL_ServerVirtualDeviceSet, NULL, CLSCTX_INPROC_SERVER,
        &IID_IServerVirtualDeviceSet2, (void **)&vss);
    ASSERT_RC(hr, S_OK);
    hr = IServerVirtualDeviceSet2_Open(vss, NULL, wname);
    if (hr == 0) return vss;
    ASSERT_EQ(IServerVirtualDeviceSet2_Release(vss), 0);
    if (hr != VD_E_INVALID || now_ms() > end)
      TASK_FAIL_("server: Open: %s", task_code_name(hr));
    sleep_ms(5);
  }
}

HELPER_IMPL(com_server) {
  if (argc != 5) return 2;
  const char *set = argv[1];
  unsigned ndev = (unsigned)atoi(argv[2]);
  uint64_t bytes = strtoull(argv[3], NULL, 10);
  int abort_mode = strcmp(argv[4], "abort") == 0;
  wchar_t wname[128];
  com_widen(set, wname, 128);

  struct srv_state st = {0};
  ASSERT_EQ(sem_init(&st.free_bufs, 0, COM_NBUF), 0);
  st.vss = open_set(wname);
  IServerVirtualDeviceSet2 *vss = st.vss;

  VDConfig cfg;
  ASSERT_RC(IServerVirtualDeviceSet2_GetConfiguration(vss, &cfg), 0);
  ASSERT_EQ(cfg.deviceCount, ndev);
  ASSERT_RC(IServerVirtualDeviceSet2_BeginConfiguration(
                vss, VDF_WriteMedia, 512, 0, COM_BUFSIZE, 10000),
            0);
  ASSERT_RC(
      IServerVirtualDeviceSet2_RequestBuffers(vss, COM_BUFSIZE, 0, COM_NBUF),
      0);
  ASSERT_RC(IServerVirtualDeviceSet2_EndConfiguration(vss), 0);
  DWORD avail = 0;
  ASSERT_RC(IServerVirtualDeviceSet2_QueryAvailableBuffers(vss, COM_BUFSIZE, 0,
                                                           &avail),
            0);
  ASSERT_EQ(avail, COM_NBUF);
  BYTE not_shared[16];
  ASSERT_EQ(IServerVirtualDeviceSet2_IsSharedBuffer(vss, not_shared), 0);

  IServerVirtualDevice *devs[8] = {0};
  ASSERT(ndev >= 1 && ndev <= 8);
  for (unsigned i = 0; i < ndev; i++) {
    char dn[128];
    wchar_t wdn[128];
    com_device_name(set, i, dn, sizeof dn);
    com_widen(dn, wdn, 128);
    ASSERT_RC(IServerVirtualDeviceSet2_OpenDevice(vss, wdn, &devs[i]), 0);
    ASSERT_NOT_NULL(devs[i]);
  }
  pthread_t agent;
  ASSERT_EQ(pthread_create(&agent, NULL, agent_main, &st), 0);

  if (abort_mode) {
    /* The client takes this write and aborts instead of completing it. */
    ASSERT_RC(
        send_one(&st, devs[0], VDC_Write, 0, 0, 4096, ERROR_OPERATION_ABORTED),
        0);
    ASSERT_EQ(pthread_join(agent, NULL), 0);
    ASSERT_RC(st.agent_rc, VD_E_ABORT);
    ASSERT_EQ(__atomic_load_n(&st.last_code, __ATOMIC_ACQUIRE),
              ERROR_OPERATION_ABORTED);
    /* A send after the abort fails and completes at once, aborted. */
    __atomic_store_n(&st.last_code, -1, __ATOMIC_RELEASE);
    struct job *j = calloc(1, sizeof *j);
    ASSERT_NOT_NULL(j);
    j->st = &st;
    j->expect_code = ERROR_OPERATION_ABORTED;
    j->cmd.commandCode = VDC_Flush;
    VDS_SET_COMPLETION(&j->cmd, on_complete);
    j->cmd.completionContext = (uint8_t *)j;
    ASSERT_RC(IServerVirtualDevice_SendCommand(devs[0], &j->cmd), VD_E_ABORT);
    ASSERT_EQ(__atomic_load_n(&st.last_code, __ATOMIC_ACQUIRE),
              ERROR_OPERATION_ABORTED);
  } else {
    static const DWORD sizes[] = {65536, 512, 4096, 65536, 1536, 32768, 65536};
    uint64_t off[8] = {0};
    size_t k = 0;
    int more = 1;
    while (more) {
      more = 0;
      for (unsigned d = 0; d < ndev; d++) {
        if (off[d] >= bytes) continue;
        DWORD n = sizes[k++ % (sizeof sizes / sizeof sizes[0])];
        if (n > bytes - off[d]) n = (DWORD)(bytes - off[d]);
        ASSERT_RC(
            send_one(&st, devs[d], VDC_Write, d, off[d], n, ERROR_SUCCESS), 0);
        off[d] += n;
        more = 1;
      }
    }
    for (unsigned d = 0; d < ndev; d++)
      ASSERT_RC(send_one(&st, devs[d], VDC_Flush, d, 0, 0, ERROR_SUCCESS), 0);
    /* Every buffer back means every command completed. */
    for (int i = 0; i < COM_NBUF; i++)
      ASSERT_EQ(sem_wait_ms(&st.free_bufs, 10000), 0);
    for (unsigned d = 0; d < ndev; d++)
      ASSERT_RC(IServerVirtualDevice_CloseDevice(devs[d]), 0);
    ASSERT_EQ(pthread_join(agent, NULL), 0);
    ASSERT_RC(st.agent_rc, 0);
  }
  HRESULT hr = IServerVirtualDeviceSet2_Close(vss);
  if (!abort_mode) ASSERT_RC(hr, 0);
  ASSERT_EQ(IServerVirtualDeviceSet2_Release(vss), 0);
  ASSERT_EQ(st.failures, 0);
  return 0;
}
