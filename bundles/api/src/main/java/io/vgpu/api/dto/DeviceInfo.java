package io.vgpu.api.dto;

import java.util.Arrays;

/**
 * What a backend says about one of its devices: everything {@code cuDeviceGet*} and
 * {@code nvmlDeviceGet*} report. The attribute table is the single source for PCI ids, compute
 * capability and limits, so both APIs answer from the same numbers.
 */
public class DeviceInfo {
    /** Position in the backend's device list. */
    public int ordinal;
    public String name;
    /** The 16 {@code CUuuid} bytes. */
    public byte[] uuid;
    public long totalMemory;
    /** Indexed by {@code CUdevice_attribute}; length {@link io.vgpu.api.CuDeviceAttribute#MAX}. */
    public int[] attributes;

    public int attribute(int attribute) {
        return attribute >= 0 && attributes != null && attribute < attributes.length ? attributes[attribute] : 0;
    }

    /** {@code GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}, lowercase, as nvidia-smi and NVML print it. */
    public String uuidString() {
        StringBuilder sb = new StringBuilder("GPU-");
        for (int i = 0; i < 16; i++) {
            if (i == 4 || i == 6 || i == 8 || i == 10) {
                sb.append('-');
            }
            sb.append(String.format("%02x", uuid[i] & 0xff));
        }
        return sb.toString();
    }

    /** {@code 0000:bb:dd.0}, the form {@code cuDeviceGetPCIBusId} returns. */
    public String pciBusId() {
        return String.format("%04x:%02x:%02x.0", attribute(io.vgpu.api.CuDeviceAttribute.PCI_DOMAIN_ID),
                attribute(io.vgpu.api.CuDeviceAttribute.PCI_BUS_ID), attribute(io.vgpu.api.CuDeviceAttribute.PCI_DEVICE_ID));
    }

    public DeviceInfo copy() {
        DeviceInfo d = new DeviceInfo();
        d.ordinal = ordinal;
        d.name = name;
        d.uuid = uuid == null ? null : uuid.clone();
        d.totalMemory = totalMemory;
        d.attributes = attributes == null ? null : Arrays.copyOf(attributes, attributes.length);
        return d;
    }

    @Override
    public String toString() {
        return name + " (" + uuidString() + ", " + pciBusId() + ", CC " + attribute(75) + "." + attribute(76) + ", "
                + (totalMemory >> 20) + " MiB)";
    }
}
