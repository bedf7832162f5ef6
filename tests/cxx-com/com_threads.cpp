/* SPDX-License-Identifier: Apache-2.0 */
// com_threads.cpp - a multi-stream VDI client written the way Windows C++
// clients are: one IClientVirtualDeviceSet2 from CoCreateInstance, handed
// to each worker thread as an IClientVirtualDeviceSet * (the base
// interface, by implicit conversion), devices opened in one thread and
// served in others, and QueryInterface / AddRef / Release as COM code uses
// them.  Run by tests/test-com-cpp.c against the C server of
// tests/test-com-peer.c in another process.
//
//   com_threads backup SET NDEV OUTPREFIX   NDEV devices, one worker each;
//       device i's Writes go to OUTPREFIX.i; every few commands a device
//       moves on to a new thread
//   com_threads abort SET NDEV   workers wait in GetCommand; another
//       thread aborts through its v1 pointer
//   com_threads refs   AddRef / Release / QueryInterface from many threads
//       at once on one set (no server)
//
// Exit 0 when everything answered as expected; the reason otherwise.
#define VDI_COM_DEFINE_COCREATEINSTANCE
#include "vdi_com.h"
#include "com_check.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <string>
#include <thread>
#include <vector>

// Commands a thread serves on a device before passing it to a new thread.
static const int kHandoff = 4;

// The device names the server opens (tests/test-com-peer.c).
static std::wstring device_name(const char *set, unsigned i) {
  std::string n = set;
  if (i > 0) n += "_" + std::to_string(i);
  return widen(n);
}

static IClientVirtualDeviceSet2 *make_set() {
  IClientVirtualDeviceSet2 *vds = nullptr;
  CHECK_HR(CoCreateInstance(CLSID_MSSQL_ClientVirtualDeviceSet, NULL,
                            CLSCTX_INPROC_SERVER, IID_IClientVirtualDeviceSet2,
                            reinterpret_cast<void **>(&vds)),
           S_OK);
  CHECK(vds != nullptr);
  return vds;
}

// CreateEx with @p ndev pipe-like devices, then wait for the server through
// the base interface, as code that only knows v1 does.
static void create_and_configure(IClientVirtualDeviceSet2 *vds, const char *set,
                                 unsigned ndev) {
  VDConfig cfg;
  std::memset(&cfg, 0, sizeof cfg);
  cfg.deviceCount = ndev;
  cfg.features = VDF_LikePipe;
  CHECK_HR(vds->CreateEx(nullptr, widen(set).c_str(), &cfg), NOERROR);
  IClientVirtualDeviceSet *v1 = vds;
  HRESULT hr;
  int waited = 0;
  while ((hr = v1->GetConfiguration(1000, &cfg)) == VD_E_TIMEOUT)
    CHECK(++waited < 20);
  CHECK_HR(hr, NOERROR);
  CHECK(cfg.deviceCount == ndev);
  CHECK(cfg.features & VDF_WriteMedia);
}

// ------------------------------------------------------------------ backup

struct Stream {
  std::wstring name;
  std::FILE *out = nullptr;
  long writes = 0;
  int hops = 0; // threads the device has been served by
  HRESULT end = NOERROR;
};

// Serve up to @p limit commands (all if negative) of @p dev into @p s.
// NOERROR: the limit was reached; VD_E_CLOSE: the normal end.
static HRESULT serve(IClientVirtualDeviceSet *set, IClientVirtualDevice *dev,
                     Stream *s, int limit) {
  VDC_Command *cmd;
  HRESULT hr;
  for (int n = 0; limit < 0 || n < limit; n++) {
    if ((hr = dev->GetCommand(INFINITE, &cmd)) != NOERROR) return hr;
    DWORD code = ERROR_SUCCESS, bytes = 0;
    if (cmd->commandCode == VDC_Write) {
      if (s->writes++ == 0) {
        // The buffer handle calls through the v1 pointer, in this thread.
        DWORD h = 0;
        BYTE *p = nullptr;
        CHECK_HR(set->GetBufferHandle(cmd->buffer, &h), NOERROR);
        CHECK_HR(set->MapBufferHandle(h, &p), NOERROR);
        CHECK(p == cmd->buffer);
      }
      // DWORD size, as in the Windows header: no cast to compare or write.
      if (std::fwrite(cmd->buffer, 1, cmd->size, s->out) == cmd->size)
        bytes = cmd->size;
      else
        code = ERROR_DISK_FULL;
    } else if (cmd->commandCode == VDC_Flush) {
      if (std::fflush(s->out) != 0) code = ERROR_DISK_FULL;
    } else {
      code = ERROR_NOT_SUPPORTED;
    }
    CHECK_HR(dev->CompleteCommand(cmd, code, bytes, 0), NOERROR);
  }
  return NOERROR;
}

// One worker: it owns one reference to the set, taken for it by the thread
// that started it, and releases it at the end.  @p dev is NULL when the
// worker opens its device itself (through the v1 pointer).
static void worker(IClientVirtualDeviceSet *set, IClientVirtualDevice *dev,
                   Stream *s) {
  if (dev == nullptr) CHECK_HR(set->OpenDevice(s->name.c_str(), &dev), NOERROR);
  CHECK(dev != nullptr);

  // COM code asks before it uses: the device answers its IID and IUnknown
  // with itself; the set's v1 pointer gives back the v2 interface.
  IClientVirtualDevice *same = nullptr;
  CHECK_HR(dev->QueryInterface(IID_IClientVirtualDevice,
                               reinterpret_cast<void **>(&same)),
           S_OK);
  CHECK(same == dev);
  same->Release();
  IUnknown *unk = nullptr;
  CHECK_HR(dev->QueryInterface(IID_IUnknown, reinterpret_cast<void **>(&unk)),
           S_OK);
  CHECK(unk == static_cast<IUnknown *>(dev));
  unk->Release();
  IClientVirtualDeviceSet2 *v2 = nullptr;
  CHECK_HR(set->QueryInterface(IID_IClientVirtualDeviceSet2,
                               reinterpret_cast<void **>(&v2)),
           S_OK);
  CHECK(static_cast<IClientVirtualDeviceSet *>(v2) == set);
  v2->Release();

  // The first commands here, then each few on a new thread, which gets
  // its own reference to the device while it holds it.
  HRESULT hr = serve(set, dev, s, kHandoff);
  s->hops = 1;
  while (hr == NOERROR) {
    dev->AddRef();
    std::thread next([&hr, set, dev, s] {
      hr = serve(set, dev, s, kHandoff);
      dev->Release();
    });
    next.join();
    s->hops++;
  }
  s->end = hr;
  set->Release();
}

static int backup(const char *setname, unsigned ndev, const char *prefix) {
  IClientVirtualDeviceSet2 *vds = make_set();
  create_and_configure(vds, setname, ndev);

  std::vector<Stream> streams(ndev);
  std::vector<std::thread> workers;
  for (unsigned i = 0; i < ndev; i++) {
    Stream &s = streams[i];
    s.name = device_name(setname, i);
    std::string path = std::string(prefix) + "." + std::to_string(i);
    s.out = std::fopen(path.c_str(), "wb");
    CHECK(s.out != nullptr);
    // What a multi-stream Windows client writes for each worker: the v2
    // object through its base interface, with a reference of its own.
    IClientVirtualDeviceSet *set = vds;
    CHECK(set->AddRef() >= 2);
    // Even devices are opened here and passed to the worker's thread; odd
    // ones are opened by the worker.
    IClientVirtualDevice *dev = nullptr;
    if (i % 2 == 0) CHECK_HR(vds->OpenDevice(s.name.c_str(), &dev), NOERROR);
    workers.emplace_back(worker, set, dev, &s);
  }
  for (std::thread &t : workers)
    t.join();

  for (Stream &s : streams) {
    CHECK_HR(s.end, VD_E_CLOSE);
    CHECK(s.writes > 0);
    CHECK(s.hops > 1); // the device really moved between threads
    CHECK(std::fclose(s.out) == 0);
  }
  // Every worker released its reference: only the factory's is left.
  CHECK_HR(vds->Close(), NOERROR);
  CHECK(vds->Release() == 0);
  return 0;
}

// ------------------------------------------------------------------- abort

static int abort_run(const char *setname, unsigned ndev) {
  IClientVirtualDeviceSet2 *vds = make_set();
  create_and_configure(vds, setname, ndev);
  std::vector<IClientVirtualDevice *> devs(ndev, nullptr);
  for (unsigned i = 0; i < ndev; i++)
    CHECK_HR(vds->OpenDevice(device_name(setname, i).c_str(), &devs[i]),
             NOERROR);

  // Device 0's worker takes the server's one Write and does not complete
  // it; the others wait for commands that never come.
  std::promise<void> taken;
  std::vector<std::thread> workers;
  std::atomic<int> aborted(0);
  for (unsigned i = 0; i < ndev; i++) {
    IClientVirtualDevice *dev = devs[i];
    workers.emplace_back([i, dev, &taken, &aborted] {
      VDC_Command *cmd = nullptr;
      if (i == 0) {
        CHECK_HR(dev->GetCommand(INFINITE, &cmd), NOERROR);
        CHECK(cmd->commandCode == VDC_Write);
        taken.set_value();
      }
      CHECK_HR(dev->GetCommand(INFINITE, &cmd), VD_E_ABORT);
      aborted++;
    });
  }
  // A third kind of thread aborts, holding only the base interface.
  IClientVirtualDeviceSet *v1 = vds;
  v1->AddRef();
  std::thread aborter([v1, &taken] {
    taken.get_future().wait();
    CHECK_HR(v1->SignalAbort(), NOERROR);
    v1->Release();
  });
  aborter.join();
  for (std::thread &t : workers)
    t.join();
  CHECK(aborted == static_cast<int>(ndev));

  VDConfig cfg;
  CHECK_HR(vds->GetConfiguration(0, &cfg), VD_E_ABORT);
  // The devices never saw VD_E_CLOSE, so Close may say VD_E_OPEN; it
  // releases the set either way.
  HRESULT hr = vds->Close();
  CHECK(hr == NOERROR || hr == VD_E_OPEN);
  CHECK(vds->Release() == 0);
  return 0;
}

// -------------------------------------------------------------------- refs

static int refs() {
  IClientVirtualDeviceSet2 *vds = make_set();
  IClientVirtualDeviceSet *v1 = vds;
  IUnknown *identity = nullptr;
  CHECK_HR(
      vds->QueryInterface(IID_IUnknown, reinterpret_cast<void **>(&identity)),
      S_OK);
  CHECK(identity == static_cast<IUnknown *>(vds));

  const int kThreads = 8, kRounds = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++)
    threads.emplace_back([v1, identity] {
      for (int r = 0; r < kRounds; r++) {
        CHECK(v1->AddRef() >= 3);
        IClientVirtualDeviceSet2 *p2 = nullptr;
        CHECK_HR(v1->QueryInterface(IID_IClientVirtualDeviceSet2,
                                    reinterpret_cast<void **>(&p2)),
                 S_OK);
        IUnknown *u = nullptr;
        CHECK_HR(
            p2->QueryInterface(IID_IUnknown, reinterpret_cast<void **>(&u)),
            S_OK);
        CHECK(u == identity); // COM identity, from any interface
        IClientVirtualDeviceSet *back = nullptr;
        CHECK_HR(u->QueryInterface(IID_IClientVirtualDeviceSet,
                                   reinterpret_cast<void **>(&back)),
                 S_OK);
        CHECK(back == v1);
        // Lower bounds: the two long-lived references plus this thread's.
        CHECK(back->Release() >= 5);
        CHECK(u->Release() >= 4);
        CHECK(p2->Release() >= 3);
        CHECK(v1->Release() >= 2);
      }
    });
  for (std::thread &t : threads)
    t.join();
  // Every AddRef was matched: the factory's reference and identity's.
  CHECK(v1->AddRef() == 3);
  CHECK(v1->Release() == 2);
  CHECK(identity->Release() == 1);

  // A refused interface leaves *ppv NULL and the count alone.
  void *p = &p;
  CHECK_HR(v1->QueryInterface(IID_IServerVirtualDeviceSet2, &p), E_NOINTERFACE);
  CHECK(p == nullptr);
  CHECK_HR(v1->QueryInterface(IID_IClientVirtualDeviceSet, nullptr), E_POINTER);
  // The last Release through the base interface frees the v2 object.
  CHECK(v1->Release() == 0);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 5 && std::strcmp(argv[1], "backup") == 0)
    return backup(argv[2], static_cast<unsigned>(std::atoi(argv[3])), argv[4]);
  if (argc == 4 && std::strcmp(argv[1], "abort") == 0)
    return abort_run(argv[2], static_cast<unsigned>(std::atoi(argv[3])));
  if (argc == 2 && std::strcmp(argv[1], "refs") == 0) return refs();
  std::fprintf(stderr, "usage: com_threads backup SET NDEV OUTPREFIX | "
                       "abort SET NDEV | refs\n");
  return 2;
}
