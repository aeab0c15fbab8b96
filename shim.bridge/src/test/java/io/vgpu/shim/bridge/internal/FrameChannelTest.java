package io.vgpu.shim.bridge.internal;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import io.vgpu.protocol.Frame;
import io.vgpu.protocol.Wire;
import java.io.EOFException;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.After;
import org.junit.Before;
import org.junit.Test;

/** Framing over a real socket pair: bursts, split frames, growth and trimming of the buffers. */
public class FrameChannelTest {
    private Path dir;
    private SocketChannel client;
    private SocketChannel server;

    @Before
    public void connect() throws IOException {
        dir = Files.createTempDirectory(Path.of("/tmp"), "vgpu-fc");
        Path path = dir.resolve("s");
        try (ServerSocketChannel listener = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            listener.bind(UnixDomainSocketAddress.of(path));
            client = SocketChannel.open(UnixDomainSocketAddress.of(path));
            server = listener.accept();
        }
    }

    @After
    public void close() throws IOException {
        client.close();
        server.close();
        Files.deleteIfExists(dir.resolve("s"));
        Files.delete(dir);
    }

    private static ByteBuffer frame(int op, int seq, int payloadLength) {
        ByteBuffer f = ByteBuffer.allocate(Wire.HEADER + payloadLength).order(ByteOrder.LITTLE_ENDIAN);
        Frame.putRequestHeader(f, 0, payloadLength, op, 0, seq);
        for (int i = 0; i < payloadLength; i++) {
            f.put(Wire.HEADER + i, (byte) (seq + i));
        }
        return f;
    }

    private void write(ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            client.write(b);
        }
    }

    private static void assertFrame(FrameChannel io, int seq, int payloadLength) throws Exception {
        int at = io.next();
        ByteBuffer in = io.in();
        assertEquals(seq, in.getInt(at + Frame.SEQ));
        assertEquals(payloadLength, in.getInt(at + Frame.LENGTH));
        for (int i = 0; i < payloadLength; i += 997) {
            assertEquals((byte) (seq + i), in.get(at + Wire.HEADER + i));
        }
        io.consume();
    }

    @Test
    public void aBurstAndSplitFramesAreReassembled() throws Exception {
        for (long spin : new long[] {0, 50_000}) {
            FrameChannel io = new FrameChannel(server, spin);
            ByteBuffer burst = ByteBuffer.allocate(3 * Wire.HEADER + 10 + 20 + 30);
            burst.put(frame(Wire.LAUNCH, 1, 10)).put(frame(Wire.LAUNCH, 2, 20)).put(frame(Wire.LAUNCH, 3, 30)).flip();
            write(burst);
            assertFrame(io, 1, 10);
            assertFrame(io, 2, 20);
            assertFrame(io, 3, 30);
            assertTrue(io.drained());

            // A frame bigger than the buffer, arriving in pieces from another thread.
            int big = 3 * FrameChannel.INITIAL_IN + 5;
            ByteBuffer f = frame(Wire.MEMCPY_HTOD, 4, big);
            Thread writer = new Thread(() -> {
                try {
                    for (int cut = 7; f.position() < f.capacity(); cut += 40_000) {
                        f.limit(Math.min(f.capacity(), cut));
                        write(f);
                    }
                } catch (IOException e) {
                    throw new AssertionError(e);
                }
            });
            writer.start();
            assertFrame(io, 4, big);
            writer.join();
            assertTrue(io.inCapacity() >= Wire.HEADER + big);
        }
    }

    @Test
    public void grownBuffersAreTrimmedAfterIdling() throws Exception {
        // A zero idle threshold: every blocking read counts as having idled.
        FrameChannel io = new FrameChannel(server, 0, 0);
        int big = 1 << 20;
        Thread writer = new Thread(() -> {
            try {
                write(frame(Wire.MEMCPY_HTOD, 1, big));
            } catch (IOException e) {
                throw new AssertionError(e);
            }
        });
        writer.start();
        assertFrame(io, 1, big);
        writer.join();
        io.out(big);
        assertTrue(io.inCapacity() > FrameChannel.INITIAL_IN);
        assertTrue(io.outCapacity() > FrameChannel.INITIAL_OUT);
        write(frame(Wire.PING, 2, 0));
        assertFrame(io, 2, 0);
        assertEquals(FrameChannel.INITIAL_IN, io.inCapacity());
        assertEquals(FrameChannel.INITIAL_OUT, io.outCapacity());
    }

    @Test
    public void oversizedLengthIsAViolationAndEofEndsTheStream() throws Exception {
        FrameChannel io = new FrameChannel(server, 50_000);
        ByteBuffer h = frame(Wire.PING, 1, 0);
        h.putInt(Frame.LENGTH, Frame.MAX_PAYLOAD + 1);
        write(h);
        try {
            io.next();
            fail("expected a violation");
        } catch (ProtocolViolation expected) {
            assertTrue(expected.getMessage().contains("exceeds"));
        }
        FrameChannel fresh = new FrameChannel(server, 50_000);
        write(frame(Wire.PING, 2, 8).limit(Wire.HEADER + 3));
        client.shutdownOutput();
        try {
            fresh.next();
            fail("expected EOF");
        } catch (EOFException expected) {
            assertTrue(expected.getMessage().contains("inside a frame"));
        }
    }

    /**
     * Found by FrameDecoderFuzzTest: a 16-byte header announcing 64 MiB made the service allocate
     * (and zero) a 64 MiB buffer at once, before HELLO and before a byte of the payload came, so a
     * few connections could take all direct memory from every other client. The buffer now grows
     * with the bytes that arrive.
     */
    @Test
    public void aHeaderAloneDoesNotGrowTheBuffer() throws Exception {
        FrameChannel io = new FrameChannel(server, 50_000);
        write(frame(Wire.MEMCPY_HTOD, 1, 100).putInt(Frame.LENGTH, Frame.MAX_PAYLOAD));
        client.shutdownOutput();
        try {
            io.next();
            fail("expected EOF");
        } catch (EOFException expected) {
            assertTrue(expected.getMessage().contains("inside a frame"));
        }
        assertEquals(FrameChannel.INITIAL_IN, io.inCapacity());
    }

    @Test
    public void largeRepliesAreWrittenCompletely() throws Exception {
        FrameChannel io = new FrameChannel(server, 50_000);
        int size = 8 << 20;
        ByteBuffer out = io.out(size);
        for (int i = 0; i < size; i += 4096) {
            out.put(Wire.HEADER + i, (byte) i);
        }
        // Far more than the socket buffer holds: the writer has to wait for the reader.
        ByteBuffer got = ByteBuffer.allocate(Wire.HEADER + size).order(ByteOrder.LITTLE_ENDIAN);
        Thread reader = new Thread(() -> {
            try {
                while (got.hasRemaining()) {
                    if (client.read(got) < 0) {
                        break;
                    }
                }
            } catch (IOException e) {
                throw new AssertionError(e);
            }
        });
        reader.start();
        io.send(Wire.MEMCPY_DTOH, 9, 0, size);
        reader.join();
        assertEquals(size, got.getInt(Frame.LENGTH));
        assertEquals(9, got.getInt(Frame.SEQ));
        for (int i = 0; i < size; i += 4096) {
            assertEquals((byte) i, got.get(Wire.HEADER + i));
        }
    }

    /**
     * While a request runs, the watcher reads ahead to see whether the client hung up: what it
     * reads is handed out afterwards in order, and the end of the stream is seen behind it.
     */
    @Test
    public void readingAheadForAHangUpKeepsEveryFrameInOrder() throws Exception {
        for (long spin : new long[] {50_000, 0}) { // the last one hangs up
            FrameChannel io = new FrameChannel(server, spin);
            write(frame(Wire.LAUNCH, 1, 10));
            assertEquals(1, io.in().getInt(io.next() + Frame.SEQ));
            // "Running" frame 1: the client sends 160 KB more (beyond the 64 KiB input buffer).
            write(frame(Wire.MEMCPY_HTOD, 2, 80_000));
            write(frame(Wire.MEMCPY_HTOD, 3, 80_000));
            for (int i = 0; i < 20; i++) {
                assertTrue(!io.peerClosed());
            }
            io.consume();
            assertFrame(io, 2, 80_000);
            write(frame(Wire.LAUNCH, 4, 5));
            assertTrue(!io.peerClosed());
            assertFrame(io, 3, 80_000);
            assertFrame(io, 4, 5);
            if (spin != 0) {
                continue; // the same channel serves the next round
            }
            write(frame(Wire.LAUNCH, 5, 7));
            assertEquals(5, io.in().getInt(io.next() + Frame.SEQ));
            write(frame(Wire.LAUNCH, 6, 3));
            client.close();
            BridgeTestBase.await("the hang-up is seen", io::peerClosed);
            io.consume();
            assertFrame(io, 6, 3);
            try {
                io.next();
                fail("end of stream after the frames read ahead");
            } catch (EOFException expected) {
                // the client is gone
            }
        }
    }
}
