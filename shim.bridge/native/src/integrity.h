/*
 * The answer to cudart's integrity check (export table d4082055-bde6-704b-
 * 8d34-ba123c66e1f2, slot 1), see the reference notes
 * cuda-driver-shim-facts.md section 4.1.
 *
 * cudart 13 asks three times during init and verifies the answer for the
 * version ending in 2: a wrong value fails the first runtime call with
 * cudaErrorSoftwareValidityNotEstablished (103). The answer is an HMAC over
 * MD2 of values the client process already has (pid, thread, table
 * addresses, reported driver version, device ids), so the shim computes it
 * locally without asking the service.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* MD2 (RFC 1319) of `len` bytes at `msg`. */
void vgpu_md2(const uint8_t *msg, size_t len, uint8_t out[16]);

/* One device's contribution to the integrity message. */
struct vgpu_integrity_device {
    uint8_t uuid[16];      /* as cuDeviceGetUuid_v2 reports it */
    int32_t pci_domain;    /* CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID */
    int32_t pci_bus;       /* CU_DEVICE_ATTRIBUTE_PCI_BUS_ID */
    int32_t pci_device;    /* CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID */
};

/*
 * Computes the INTEGRITY_CHECK export-table answer.
 *
 * driver_version must be the value cuDriverGetVersion reports: cudart hashes
 * what it was told, so the two must never disagree. thread is the caller's
 * pthread_self() truncated to 32 bits; the three addresses are the
 * CUDART_INTERFACE table, the INTEGRITY_CHECK table and the check function as
 * handed to cudart. Devices are hashed in ordinal order.
 */
void vgpu_integrity_hash(uint32_t driver_version, uint32_t version, uint32_t pid, uint32_t thread,
                         uint64_t cudart_iface_table, uint64_t integrity_table, uint64_t integrity_fn,
                         uint64_t unix_seconds, const struct vgpu_integrity_device *devices, int ndevices,
                         uint64_t out[2]);
