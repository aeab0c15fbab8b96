package io.vgpu.api.session;

/** Who is on the other end of a session: recorded from the handshake and the socket's peer credentials. */
public class ClientInfo {
    public int pid;
    public int uid;
    public int gid;
    public String processName;
    /** How the client reached the service, e.g. "unix:/run/vgpu/vgpu.sock". */
    public String transport;
}
