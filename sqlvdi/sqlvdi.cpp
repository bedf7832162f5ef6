/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sqlvdi.cpp - libsqlvdi.so: the SQL Server on Linux VDI client SDK classes
 * (ClientVirtualDeviceSet, ClientVirtualDevice) over openvdi's C core.
 *
 * Every method is a direct translation to one vdi_set_* / vdi_dev_* call;
 * all protocol logic, state checks and return codes come from the core.
 * What lives here is only object bookkeeping: the set object owns the
 * device objects OpenDevice hands out and frees them at Close.
 *
 * Two headers are named vdi.h.  The SDK's (sqlvdi/include/vdi.h, what
 * our callers include) is named here by its path from this file; openvdi's
 * C API (include/vdi.h) comes through -Iinclude, with OPENVDI_SDK_TYPES:
 * then it declares only its functions, over the SDK's types (same layouts,
 * pinned below), and checks the SDK's codes against its own lists.  So a
 * drift of a core signature or of a code fails to compile here.  Object
 * modes do not depend on the caller's umask: the core keeps the set in
 * memfds passed over an abstract Unix socket, so there is no file system
 * object to chmod.
 */
#include "include/vdi.h" /* the SDK's: sqlvdi/include/vdi.h */

#define OPENVDI_SDK_TYPES
#include <vdi.h> /* openvdi's C API: include/vdi.h, functions only */

#include <new>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* The ABI the SDK's callers were compiled against (x86-64 / LP64). */
static_assert(sizeof(VDConfig) == 44, "VDConfig is 44 bytes");
static_assert(sizeof(VDC_Command) == 24, "VDC_Command is 24 bytes");
static_assert(offsetof(VDC_Command, buffer) == 16, "VDC_Command layout");
static_assert(sizeof(VDS_Command) == 56, "VDS_Command is 56 bytes");
static_assert(sizeof(ClientVirtualDeviceSet) == 8, "one pointer");
static_assert(sizeof(ClientVirtualDevice) == 8, "one pointer");
static_assert(VDF_LikeTape == 0x173 && VDF_CompleteEnabled == 0x40000 &&
                  VDC_Complete == 19,
              "enum values");

/* A set carries at most this many devices (the interface's limit). */
static const int kMaxDevices = 64;

class CVD {
public:
  vdi_device_t *dev; /* NULL until OpenDevice hands the object out */
  CVDS *owner;       /* the set that will free this object, or NULL */
};

class CVDS {
public:
  vdi_set_t *set;
  pthread_mutex_t lock; /* guards devs: devices may be opened per thread */
  ClientVirtualDevice *devs[kMaxDevices];
  int ndevs;

  CVDS() : set(NULL), ndevs(0) {
    pthread_mutex_init(&lock, NULL);
  }
  ~CVDS() {
    free_devices();
    if (set) vdi_set_free(set);
    pthread_mutex_destroy(&lock);
  }

  /* The C object is made on first use, so that a failure can be returned
   * from a method rather than lost in the constructor. */
  int ensure_set() {
    return set ? 0 : vdi_set_new(&set);
  }

  int open_device(const char *name, ClientVirtualDevice **out) {
    vdi_device_t *d = NULL;
    int rc = vdi_set_open_device(set, name, &d);
    if (rc != 0) return rc;
    ClientVirtualDevice *obj = new (std::nothrow) ClientVirtualDevice();
    if (!obj || !obj->impl_) {
      delete obj;
      return VD_E_MEMORY;
    }
    pthread_mutex_lock(&lock);
    if (ndevs == kMaxDevices) { /* the core never opens more */
      pthread_mutex_unlock(&lock);
      delete obj;
      return VD_E_UNEXPECTED;
    }
    obj->impl_->dev = d;
    obj->impl_->owner = this;
    devs[ndevs++] = obj;
    pthread_mutex_unlock(&lock);
    *out = obj;
    return 0;
  }

  /* A caller deleted a device itself: do not free it again at Close. */
  void forget(ClientVirtualDevice *obj) {
    pthread_mutex_lock(&lock);
    for (int i = 0; i < ndevs; i++)
      if (devs[i] == obj) {
        devs[i] = devs[--ndevs];
        break;
      }
    pthread_mutex_unlock(&lock);
  }

  /* After Close the core's device handles are gone; so are our objects. */
  void free_devices() {
    pthread_mutex_lock(&lock);
    int n = ndevs;
    ndevs = 0;
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < n; i++) {
      devs[i]->impl_->owner = NULL;
      delete devs[i];
    }
  }
};

/* ------------------------------------------------- ClientVirtualDeviceSet */

ClientVirtualDeviceSet::ClientVirtualDeviceSet()
    : impl_(new (std::nothrow) CVDS()) {}

ClientVirtualDeviceSet::~ClientVirtualDeviceSet() {
  delete impl_;
}

int ClientVirtualDeviceSet::Create(char *name, VDConfig *cfg) {
  if (!impl_) return VD_E_MEMORY;
  int rc = impl_->ensure_set();
  if (rc != 0) return rc;
  return vdi_set_create(impl_->set, name, cfg);
}

int ClientVirtualDeviceSet::GetConfiguration(time_t timeout, VDConfig *cfg) {
  if (!impl_ || !impl_->set) return VD_E_PROTOCOL; /* never created */
  return vdi_set_get_configuration(impl_->set, (int64_t)timeout, cfg);
}

int ClientVirtualDeviceSet::OpenDevice(char *name,
                                       ClientVirtualDevice **ppVirtualDevice) {
  if (ppVirtualDevice) *ppVirtualDevice = NULL;
  if (!impl_ || !impl_->set) return VD_E_PROTOCOL;
  if (!ppVirtualDevice) return VD_E_INVALID;
  return impl_->open_device(name, ppVirtualDevice);
}

int ClientVirtualDeviceSet::Close() {
  if (!impl_ || !impl_->set) return VD_E_PROTOCOL;
  int rc = vdi_set_close(impl_->set);
  impl_->free_devices();
  return rc;
}

int ClientVirtualDeviceSet::SignalAbort() {
  if (!impl_ || !impl_->set) return VD_E_PROTOCOL;
  return vdi_set_signal_abort(impl_->set);
}

int ClientVirtualDeviceSet::OpenInSecondary(char *setName) {
  if (!impl_) return VD_E_MEMORY;
  int rc = impl_->ensure_set();
  if (rc != 0) return rc;
  return vdi_set_open_in_secondary(impl_->set, setName);
}

int ClientVirtualDeviceSet::GetBufferHandle(uint8_t *pBuffer,
                                            unsigned int *pBufferHandle) {
  if (!impl_ || !impl_->set) return VD_E_PROTOCOL;
  return vdi_set_get_buffer_handle(impl_->set, pBuffer, pBufferHandle);
}

int ClientVirtualDeviceSet::MapBufferHandle(int dwBuffer, uint8_t **ppBuffer) {
  if (!impl_ || !impl_->set) return VD_E_PROTOCOL;
  /* The SDK passes the 32-bit handle as an int: same bits. */
  return vdi_set_map_buffer_handle(impl_->set, (uint32_t)dwBuffer, ppBuffer);
}

void ClientVirtualDeviceSet::RegisterDeviceClosed() {
  /* The core counts open devices itself (Close -> VD_E_OPEN). */
}

/* ---------------------------------------------------- ClientVirtualDevice */

ClientVirtualDevice::ClientVirtualDevice() : impl_(new (std::nothrow) CVD()) {
  if (impl_) {
    impl_->dev = NULL;
    impl_->owner = NULL;
  }
}

ClientVirtualDevice::~ClientVirtualDevice() {
  if (impl_ && impl_->owner) impl_->owner->forget(this);
  delete impl_;
}

int ClientVirtualDevice::GetCommand(time_t timeout, VDC_Command **ppCmd) {
  if (!impl_ || !impl_->dev) return VD_E_PROTOCOL; /* not from OpenDevice */
  return vdi_dev_get_command(impl_->dev, (int64_t)timeout, ppCmd);
}

int ClientVirtualDevice::CompleteCommand(VDC_Command *pCmd, int completionCode,
                                         unsigned long bytesTransferred,
                                         int64_t position) {
  if (!impl_ || !impl_->dev) return VD_E_PROTOCOL;
  if (bytesTransferred > UINT32_MAX) return VD_E_INVALID; /* > any buffer */
  return vdi_dev_complete_command(impl_->dev, pCmd, (uint32_t)completionCode,
                                  (uint32_t)bytesTransferred,
                                  (uint64_t)position);
}
