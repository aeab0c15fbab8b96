package io.vgpu.api.dto;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotSame;

import io.vgpu.api.CuDeviceAttribute;
import io.vgpu.api.CuResult;
import org.junit.Test;

public class DeviceInfoTest {
    private static DeviceInfo device() {
        DeviceInfo d = new DeviceInfo();
        d.name = "NVIDIA H100 80GB HBM3";
        d.uuid = new byte[] {(byte) 0xb6, (byte) 0xda, (byte) 0xdb, 0x23, (byte) 0xec, (byte) 0xf9, 0x30, (byte) 0x99,
            (byte) 0xbf, 0x7f, (byte) 0x98, 0x3e, 0x71, 0x74, (byte) 0xef, 0x37};
        d.totalMemory = 80L << 30;
        d.attributes = new int[CuDeviceAttribute.MAX];
        d.attributes[CuDeviceAttribute.PCI_DOMAIN_ID] = 0;
        d.attributes[CuDeviceAttribute.PCI_BUS_ID] = 0x9a;
        d.attributes[CuDeviceAttribute.PCI_DEVICE_ID] = 1;
        d.attributes[CuDeviceAttribute.COMPUTE_CAPABILITY_MAJOR] = 9;
        return d;
    }

    @Test
    public void formatsIdentityAsNvidiaToolsDo() {
        DeviceInfo d = device();
        assertEquals("GPU-b6dadb23-ecf9-3099-bf7f-983e7174ef37", d.uuidString());
        assertEquals("0000:9a:01.0", d.pciBusId());
        assertEquals(9, d.attribute(CuDeviceAttribute.COMPUTE_CAPABILITY_MAJOR));
        assertEquals(0, d.attribute(-1));
        assertEquals(0, d.attribute(CuDeviceAttribute.MAX));
    }

    @Test
    public void copiesAreDeep() {
        DeviceInfo d = device();
        DeviceInfo c = d.copy();
        assertNotSame(d.uuid, c.uuid);
        assertNotSame(d.attributes, c.attributes);
        assertArrayEquals(d.attributes, c.attributes);
        c.attributes[CuDeviceAttribute.PCI_BUS_ID] = 1;
        assertEquals(0x9a, d.attribute(CuDeviceAttribute.PCI_BUS_ID));
    }

    @Test
    public void resultNamesAreTheDriverNames() {
        assertEquals("CUDA_ERROR_INVALID_VALUE", CuResult.name(CuResult.INVALID_VALUE));
        assertEquals("CUDA_ERROR_DEVICE_UNAVAILABLE", CuResult.name(46));
        assertEquals("CUDA_SUCCESS", CuResult.name(0));
        assertEquals("CUDA_ERROR_12345", CuResult.name(12345));
    }
}
