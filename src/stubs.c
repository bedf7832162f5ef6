/* stubs.c - TEMPORARY: link stubs while the core is written. */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "vdi.h"
int vdi_set_new(vdi_set_t **out) { return VD_E_UNEXPECTED; }
void vdi_set_free(vdi_set_t *set) { }
int vdi_set_allow_group(vdi_set_t *set, gid_t gid) { return VD_E_UNEXPECTED; }
int vdi_set_create(vdi_set_t *set, const char *name, VDConfig *cfg) { return VD_E_UNEXPECTED; }
int vdi_set_create_ex(vdi_set_t *set, const char *instance, const char *name, VDConfig *cfg) { return VD_E_UNEXPECTED; }
int vdi_set_get_configuration(vdi_set_t *set, int64_t timeout_ms, VDConfig *cfg) { return VD_E_UNEXPECTED; }
int vdi_set_open_device(vdi_set_t *set, const char *name, vdi_device_t **out) { return VD_E_UNEXPECTED; }
int vdi_set_close(vdi_set_t *set) { return VD_E_UNEXPECTED; }
int vdi_set_signal_abort(vdi_set_t *set) { return VD_E_UNEXPECTED; }
int vdi_set_open_in_secondary(vdi_set_t *set, const char *name) { return VD_E_UNEXPECTED; }
int vdi_set_open_in_secondary_ex(vdi_set_t *set, const char *instance, const char *name) { return VD_E_UNEXPECTED; }
int vdi_set_get_buffer_handle(vdi_set_t *set, const uint8_t *buf, uint32_t *handle) { return VD_E_UNEXPECTED; }
int vdi_set_map_buffer_handle(vdi_set_t *set, uint32_t handle, uint8_t **buf) { return VD_E_UNEXPECTED; }
int vdi_dev_get_command(vdi_device_t *dev, int64_t timeout_ms, VDC_Command **cmd) { return VD_E_UNEXPECTED; }
int vdi_dev_complete_command(vdi_device_t *dev, VDC_Command *cmd, uint32_t code, uint32_t bytes, uint64_t position) { return VD_E_UNEXPECTED; }
int vdi_srv_new(vdi_srvset_t **out) { return VD_E_UNEXPECTED; }
void vdi_srv_free(vdi_srvset_t *srv) { }
int vdi_srv_open(vdi_srvset_t *srv, const char *instance, const char *name) { return VD_E_UNEXPECTED; }
int vdi_srv_get_configuration(vdi_srvset_t *srv, VDConfig *cfg) { return VD_E_UNEXPECTED; }
int vdi_srv_begin_configuration(vdi_srvset_t *srv, uint32_t features, uint32_t block_size, uint32_t alignment, uint32_t max_transfer_size, uint32_t timeout_ms) { return VD_E_UNEXPECTED; }
int vdi_srv_request_buffers(vdi_srvset_t *srv, uint32_t size, uint32_t alignment, uint32_t count) { return VD_E_UNEXPECTED; }
int vdi_srv_query_available_buffers(vdi_srvset_t *srv, uint32_t size, uint32_t alignment, uint32_t *count) { return VD_E_UNEXPECTED; }
int vdi_srv_end_configuration(vdi_srvset_t *srv) { return VD_E_UNEXPECTED; }
int vdi_srv_open_device(vdi_srvset_t *srv, const char *name, vdi_srvdev_t **out) { return VD_E_UNEXPECTED; }
int vdi_srv_execute_completion_agent(vdi_srvset_t *srv) { return VD_E_UNEXPECTED; }
int vdi_srv_allocate_buffer(vdi_srvset_t *srv, uint8_t **buf, uint32_t size, uint32_t alignment) { return VD_E_UNEXPECTED; }
int vdi_srv_free_buffer(vdi_srvset_t *srv, uint8_t *buf, uint32_t size) { return VD_E_UNEXPECTED; }
int vdi_srv_is_shared_buffer(vdi_srvset_t *srv, const uint8_t *buf) { return VD_E_UNEXPECTED; }
int vdi_srv_signal_abort(vdi_srvset_t *srv) { return VD_E_UNEXPECTED; }
int vdi_srv_close(vdi_srvset_t *srv) { return VD_E_UNEXPECTED; }
int vdi_srvdev_send_command(vdi_srvdev_t *dev, VDS_Command *cmd) { return VD_E_UNEXPECTED; }
int vdi_srvdev_close_device(vdi_srvdev_t *dev) { return VD_E_UNEXPECTED; }
void vdi_set_spin_us(uint32_t us) { }
