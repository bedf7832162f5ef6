/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.c - every configuration and name rule, in one copy for both
 * halves of a set.
 *
 * The client checks its caller's request and, later, the server's choice;
 * the server checks the request it finds in shared memory and its own
 * caller's choice.  Both use the functions below, so a limit changed here
 * changes for both at once: two copies that drift would make a client
 * abort an honest server.  The rules only say yes or no (or, for the
 * request, which of two caller codes); each side maps a violation to its
 * own code: VD_E_INVALID for its caller, VD_E_PROTOCOL for its peer.
 */
#include "vdi_int.h"

#include <string.h>

#define MEDIA (VDF_WriteMedia | VDF_ReadMedia)
/* The feature bits only a server sets. */
#define SERVER_FEATURES (MEDIA | VDF_CompleteEnabled)

bool vdi__pow2(uint32_t x) {
  return x && (x & (x - 1)) == 0;
}

bool vdi__align_ok(uint32_t align) {
  return align == 0 || (vdi__pow2(align) && align <= VDI_MAX_ALIGNMENT);
}

int vdi__name_check(const char *name) {
  if (!name) return VD_E_INVALID;
  size_t n = strnlen(name, VDI_MAX_NAME + 1);
  if (n == 0 || n > VDI_MAX_NAME) return VD_E_INVALID;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)name[i];
    /* Bytes >= 0x80 are allowed so UTF-8 names work; control characters,
     * and the separators no platform's VDI accepts, are not. */
    if (ch < 0x20 || ch == 0x7f || ch == '/' || ch == '\\') return VD_E_INVALID;
  }
  return 0;
}

int vdi__config_check_client(const VDConfig *cfg) {
  if (cfg->deviceCount < 1 || cfg->deviceCount > VDI_MAX_DEVICES)
    return VD_E_INVALID;
  if (!vdi__align_ok(cfg->alignment)) return VD_E_INVALID;
  if (cfg->prefixZoneSize > VDI_MAX_PREFIXZONE) return VD_E_INVALID;
  const uint32_t extras = VDF_Discard | VDF_SnapshotPrepare |
                          VDF_RequestComplete | VDF_EnumFrozenFiles |
                          VDF_VSSWriter | VDF_LatchStats;
  uint32_t mode = cfg->features & ~extras;
  if (mode != VDF_LikePipe && mode != (VDF_LikePipe | VDF_Removable) &&
      mode != VDF_LikeTape && mode != VDF_LikeDisk &&
      mode != (VDF_LikeDisk | VDF_Removable))
    return VD_E_NOTSUPPORTED;
  return 0;
}

bool vdi__config_choice_ok(const VDConfig *req, uint32_t features,
                           uint32_t block_size, uint32_t alignment,
                           uint32_t max_transfer_size) {
  uint32_t media = features & MEDIA;
  if (media != VDF_WriteMedia && media != VDF_ReadMedia) return false;
  if (features & ~SERVER_FEATURES) return false;
  if ((features & VDF_CompleteEnabled) &&
      !(req->features & VDF_RequestComplete))
    return false;
  if (!vdi__pow2(block_size) || block_size < VDI_MIN_BLOCKSIZE ||
      block_size > VDI_MAX_BLOCKSIZE)
    return false;
  if (!vdi__pow2(alignment) || alignment < block_size ||
      alignment > VDI_MAX_ALIGNMENT)
    return false;
  return max_transfer_size != 0 &&
         max_transfer_size % VDI_MAXTRANSFER_UNIT == 0 &&
         max_transfer_size <= VDI_MAX_MAXTRANSFERSIZE;
}

/* The configuration the server published: its choice must pass the rule
 * the server itself applied, and keep what the client asked for. */
int vdi__config_check_chosen(const VDConfig *req, const VDConfig *cho) {
  if (cho->deviceCount != req->deviceCount) return VD_E_PROTOCOL;
  if ((cho->features & ~SERVER_FEATURES) != req->features) return VD_E_PROTOCOL;
  if (!vdi__config_choice_ok(req, cho->features & SERVER_FEATURES,
                             cho->blockSize, cho->alignment,
                             cho->maxTransferSize))
    return VD_E_PROTOCOL;
  /* The client's alignment is a minimum the server cannot lower. */
  if (cho->alignment < req->alignment) return VD_E_PROTOCOL;
  if (cho->prefixZoneSize != req->prefixZoneSize) return VD_E_PROTOCOL;
  return 0;
}

bool vdi__segment_ok(uint64_t size, uint32_t align) {
  return vdi__pow2(align) && align <= VDI_MAX_ALIGNMENT && size != 0 &&
         size <= VDI_MAX_SEGMENT_SIZE;
}
